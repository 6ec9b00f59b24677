#!/usr/bin/env bash
# Release compile time of a 1000-op `tanh` chain written straight-line (as
# study/build.rs generates it) against the same chain written as a 1000-iteration
# `for` loop.
#
# Creates two throwaway library crates in a temp dir, each depending on this
# workspace's `autodiff` by path, builds each once to warm the dependencies, then
# times `cargo build --release` of the user crate alone (touch its source,
# rebuild) REPS times and prints the median. Both crates instantiate the same
# items the study runs (`_grad`, which calls `_forward` and `_backward`, and
# `_tape_grad`) at f32, so rustc and LLVM compile the same code the study does.
#
# Usage: study/compile_time.sh [DEPTH]        (default 1000; REPS=3 by default)
# `study/compile_time.sh 1` measures the fixed cost that both crates pay whatever
# the depth (mostly the runtime's kernels and tape instantiated at f32).
# Not run in CI: it takes minutes and its figures depend on the machine's load
# (printed before and after).
#
# CARGO_TARGET_DIR is honoured (reusing a warm target dir skips most of the
# dependency build); otherwise the target dir is inside the temp dir. KEEP=1
# keeps the temp dir.

set -euo pipefail

depth="${1:-1000}"
reps="${REPS:-3}"
workspace="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/autodiff-compile-time.XXXXXX")"
if [[ "${KEEP:-0}" != 1 ]]; then
    trap 'rm -rf "$tmp"' EXIT
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$tmp/target}"

# make_crate NAME: the manifest, with the workspace's lock file so that both crates
# resolve the same dependency versions (and share their build artifacts).
make_crate() {
    local name="$1"
    mkdir -p "$tmp/$name/src"
    cat >"$tmp/$name/Cargo.toml" <<EOF
[package]
name = "$name"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
autodiff = { path = "$workspace" }

# Not a member of any enclosing workspace.
[workspace]
EOF
    cp "$workspace/Cargo.lock" "$tmp/$name/Cargo.lock"
}

# The straight chain, generated as study/build.rs generates chain_{depth}.
make_crate chain_straight
{
    echo "use autodiff::prelude::*;"
    echo
    echo "/// A chain of $depth \`tanh\`, then \`sum\`."
    echo "#[differentiate]"
    echo "pub fn chain<F: Float>(x: &Array1<F>) -> F {"
    echo "    let h1 = tanh(x);"
    for ((i = 2; i <= depth; i++)); do
        echo "    let h$i = tanh(&h$((i - 1)));"
    done
    echo "    h$depth.sum()"
    echo "}"
    cat <<'EOF'

/// The items the study runs, instantiated at f32.
pub fn instantiate(x: &Array1<f32>) -> f32 {
    let (value, (grad,)) = chain_grad(x);
    let (tape_value, (tape_grad,)) = chain_tape_grad(x);
    value + tape_value + grad.sum() + tape_grad.sum()
}
EOF
} >"$tmp/chain_straight/src/lib.rs"

# The same chain as a loop (study/src/depth.rs's chain_loop).
make_crate chain_loop
cat >"$tmp/chain_loop/src/lib.rs" <<EOF
use autodiff::prelude::*;

/// A chain of \`depth\` \`tanh\` as a loop, then \`sum\`.
#[differentiate]
pub fn chain<F: Float>(x: &Array1<F>, depth: usize) -> F {
    let mut h = x.to_owned();
    for _ in 0..depth {
        h = tanh(&h);
    }
    h.sum()
}

/// The items the study runs, instantiated at f32.
pub fn instantiate(x: &Array1<f32>) -> f32 {
    let (value, (grad,)) = chain_grad(x, $depth);
    let (tape_value, (tape_grad,)) = chain_tape_grad(x, $depth);
    value + tape_value + grad.sum() + tape_grad.sum()
}
EOF

now() { date +%s.%N; }

# time_crate NAME: warm build, then REPS timed rebuilds of the user crate alone.
time_crate() {
    local name="$1" dir="$tmp/$1" samples=() start end
    echo "== $name: warming dependencies" >&2
    (cd "$dir" && cargo build --release --quiet)
    for ((r = 1; r <= reps; r++)); do
        touch "$dir/src/lib.rs"
        start="$(now)"
        (cd "$dir" && cargo build --release --quiet)
        end="$(now)"
        samples+=("$(echo "$end - $start" | bc -l)")
        echo "   $name rebuild $r: $(printf '%.2f' "${samples[-1]}") s" >&2
    done
    local median
    median="$(printf '%s\n' "${samples[@]}" | sort -g | sed -n "$(((reps + 1) / 2))p")"
    printf '%-16s median %7.2f s  (samples: %s)\n' "$name" "$median" \
        "$(printf '%.2f ' "${samples[@]}")"
}

echo "release build of the user crate alone, $depth ops, median of $reps (rustc $(rustc --version | cut -d' ' -f2))"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"
time_crate chain_straight
time_crate chain_loop
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"
