#!/usr/bin/env bash
# Installs what the `mpi` feature needs on Debian/Ubuntu: OpenMPI (mpicc, mpirun and the
# headers), pkg-config (how rsmpi's build script finds OpenMPI) and libclang (bindgen, in
# rsmpi's mpi-sys, parses mpi.h with it).
#
# Idempotent: it does nothing when all of it is already present. Works as root; otherwise
# through sudo when there is one. `.ci/run` calls it before building with `--features mpi`.
set -euo pipefail

# libclang as bindgen finds it: a libclang.so (or libclang-<ver>.so) under the usual
# library directories or LIBCLANG_PATH.
have_libclang() {
    local dirs=(/usr/lib /usr/lib/llvm-*/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/local/lib)
    if [[ -n "${LIBCLANG_PATH:-}" ]]; then dirs=("$LIBCLANG_PATH" "${dirs[@]}"); fi
    local dir
    for dir in "${dirs[@]}"; do
        if compgen -G "$dir/libclang.so*" >/dev/null || compgen -G "$dir/libclang-*.so*" >/dev/null; then
            return 0
        fi
    done
    return 1
}

if command -v mpicc >/dev/null && command -v mpirun >/dev/null \
    && command -v pkg-config >/dev/null && have_libclang; then
    echo "install-openmpi: mpicc, mpirun, pkg-config and libclang are present; nothing to do"
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    echo "install-openmpi: no apt-get here; install OpenMPI (mpicc, mpirun), pkg-config and libclang" \
        "by hand (e.g. 'dnf install openmpi-devel clang-devel', 'brew install open-mpi llvm')" >&2
    exit 1
fi

if [[ "$(id -u)" -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null; then
    as_root=(sudo)
else
    echo "install-openmpi: not root and no sudo; as root run:" >&2
    echo "  apt-get install -y --no-install-recommends openmpi-bin libopenmpi-dev pkg-config libclang-dev" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends openmpi-bin libopenmpi-dev pkg-config libclang-dev
echo "install-openmpi: $(mpirun --version | head -n 1)"
