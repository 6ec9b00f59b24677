#!/usr/bin/env python3
"""Our conv2d and GEMM kernels against PyTorch (MKL + oneDNN) and numpy (OpenBLAS),
measured in the same run, in alternating rounds, on a shared machine.

Two tables:

``conv``: conv2d at the study's shape (x 8×64×56×56, w 64×64×3×3, stride 1, padding 1,
f32), forward, grad_input and grad_weight separately, at 1 and 2 threads: ours
(``kernels::conv``, through the conv bench's ``serve`` mode, ``set_num_threads(t)``) against
``torch.nn.functional.conv2d`` and ``torch.ops.aten.convolution_backward`` with an
``output_mask`` asking for only the one adjoint (``torch.set_num_threads(t)``).

``gemm``: GFLOP/s of ``c = a·b`` at the study's shapes (``benches/gemm.rs`` SHAPES) and the
transposed views the backward of a dense layer uses (``aᵀ·b``, ``a`` stored k×m; ``a·bᵀ``,
``b`` stored n×k; e.g. small_mlp's ``xᵀ·dh`` with x 32×784 and dh 32×128, and
``dh·w1ᵀ``), f32 and f64, one thread: ours (``kernels::gemm::gemm``, i.e. the ``gemm``
crate, or ``matrixmultiply`` for tiny products) against MKL (``torch.mm``) and OpenBLAS
(``numpy.matmul``; which OpenBLAS and which kernel it picked is printed from threadpoolctl).

How: the Rust bench binary runs as a server (``cargo bench -p autodiff-runtime --bench
conv -- serve``, resp. ``--bench gemm -- serve``) that times calls on request and answers in
JSON; this script sends it one request, then times PyTorch's (and numpy's) calls itself,
and so on in rounds, swapping who goes first every round. The machine is shared, so a
round counts only if the other jobs on it stayed under ``--idle-threshold`` of the cores
while it ran (from /proc/stat, less this script's and the server's own CPU time);
otherwise it is run again, after waiting up to ``--max-wait`` seconds for an idle moment.
The table says how many rounds were thrown away. Between the two sides it pauses 0.1 s so that neither side's idle threads
(OpenMP's spin-wait, rayon's) run into the other's measurement. After such a pause the first calls of either side run slower (by up
to 1.5× at 2 threads, whatever the library: caches and idle cores warming up), so in each
round each side first runs ``--warmup`` calls that are not counted. Each round gives one
ratio per product (median of that round's counted calls,
theirs over ours: > 1 means ours is faster); the table reports the medians over rounds of
the times and of the per-round ratios, and the range of the ratios.

Run from the repository root (builds the bench binaries first):

    /work/torch-venv/bin/python autodiff-runtime/benches/pytorch/kernels_vs_pytorch.py conv
    /work/torch-venv/bin/python autodiff-runtime/benches/pytorch/kernels_vs_pytorch.py gemm

``--forms nt`` (``gemm``) runs only the rows of those forms (``nn``, ``tn``, ``nt``), e.g. to
compare two builds of the ``a·bᵀ`` path quickly. ``--cargo-arg=--features=gemm/x86-v4`` (repeatable) passes flags to ``cargo bench``, e.g. to
measure the ``gemm`` crate with its AVX-512 kernels; ``--json FILE`` also writes the raw
figures. The environment's CARGO_TARGET_DIR is respected. Needs torch, numpy and
threadpoolctl. Nothing here asserts a timing: it reports.

Results, 2026-12-02, Intel Xeon (AVX-512, 2 cores, shared with another developer's builds:
rounds they disturbed were redone), torch 2.15.0 (MKL 2024.2, oneDNN 3.13, its conv runs
``jit:avx512_core`` direct convolution plus NCHW reorders), numpy 2.4.6 (scipy-openblas
0.3.31, SkylakeX kernels). ``conv``, 15 rounds × (2 + 5) calls; ratio = PyTorch's time /
ours, median of per-round ratios (range):

| threads | product | ours, gemm AVX2 (ms) | PyTorch | ratio | ours, ``gemm/x86-v4`` (ms) | PyTorch | ratio |
|---|---|---|---|---|---|---|---|
| 1 | forward     | 11.30 | 12.76 | 1.13× (1.06–1.26) | 7.90 | 13.97 | 1.76× (1.60–1.83) |
| 1 | grad_input  | 11.23 | 14.81 | 1.32× (1.19–1.43) | 7.84 | 16.18 | 2.02× (1.85–2.25) |
| 1 | grad_weight | 11.87 | 14.10 | 1.18× (1.10–1.24) | 7.89 | 13.63 | 1.72× (1.52–1.82) |
| 2 | forward     |  6.06 |  4.59 | 0.76× (0.46–0.77) | 4.60 |  8.68 | 1.84× (1.02–2.14) |
| 2 | grad_input  |  6.11 |  5.20 | 0.85× (0.81–0.92) | 5.13 |  9.55 | 1.87× (1.17–2.42) |
| 2 | grad_weight |  7.94 |  7.25 | 0.91× (0.83–1.10) | 5.60 |  8.40 | 1.51× (0.95–2.08) |

PyTorch's 2-thread times are bimodal from run to run (forward 4.6 ms in the run above,
7.1–8.7 ms in every other run that day, ours 6.06–6.09 ms in both): a re-run of the AVX2
column at 2 threads gave 1.35× (forward, PyTorch 8.24 ms), 1.55× (grad_input), 1.40×
(grad_weight). ``gemm``, one thread, 7 rounds × 5 batches, GFLOP/s, ours % of MKL:

| type | product | m×k·k×n | ours AVX2 | ours x86-v4 | MKL | OpenBLAS | % of MKL (AVX2 / x86-v4) |
|---|---|---|---|---|---|---|---|
| f32 | a·b (small_mlp x·w1)          | 32×784·784×128   | 110 | 193 | 196 | 123 | 51 / 98 % |
| f32 | aᵀ·b (small_mlp xᵀ·dh)        | 784×32·32×128    | 105 | 198 | 207 | 138 | 55 / 96 % |
| f32 | a·bᵀ (small_mlp dh·w1ᵀ)       | 32×128·128×784   |  77 | 118 | 166 |  91 | 47 / 71 % |
| f32 | a·b (matmul_chain)            | 64×512·512×128   | 107 | 194 | 218 | 152 | 50 / 89 % |
| f32 | a·bᵀ (matmul_chain g·bᵀ)      | 64×256·256×128   |  94 | 141 | 167 | 119 | 56 / 84 % |
| f32 | a·b (conv im2col, one sample) | 64×576·576×3136  |  85 | 171 | 194 | 131 | 44 / 89 % |
| f32 | a·b (conv im2col, batch)      | 64×576·576×25088 |  66 | 147 | 189 |  97 | 34 / 77 % |
| f64 | a·b (small_mlp x·w1)          | 32×784·784×128   |  53 |  90 |  98 |  60 | 55 / 92 % |
| f64 | a·bᵀ (small_mlp dh·w1ᵀ)       | 32×128·128×784   |  46 |  71 |  86 |  65 | 53 / 83 % |
| f64 | a·b (conv im2col, one sample) | 64×576·576×3136  |  41 |  84 | 106 |  78 | 39 / 80 % |

The two "ours" columns come from two runs (with and without ``--cargo-arg=--features=gemm/x86-v4``),
each alternating with MKL and OpenBLAS; MKL and OpenBLAS are shown from the x86-v4 run, and
each % is against the MKL of its own run (MKL's rate differed by up to 10 % between the
runs). The command prints all 26 rows (also the tiny 32×128·128×10-type products, where
all three libraries run at 30–90 GFLOP/s and ours is at 86–168 % of MKL).

The ``a·bᵀ`` rows with a short output have since gone through a column-major temporary
(then a scalar tiled transpose, then one in registers; ``kernels/gemm.rs``). ``--forms nt``,
x86-v4, 2026-12-02 17:32 UTC, ours % of MKL in the same run, f32 / f64: small_mlp dh·w1ᵀ
107 / 112 %, matmul_chain g·bᵀ 99 / 96 %, rnn g·wᵀ 108 / 120 %, attention Q·Kᵀ (which keeps
the crate's own path) 91 / 96 %.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PAUSE = 0.1


def bench_binary(name, cargo_args):
    """Builds `--bench NAME` of autodiff-runtime and returns the executable's path."""
    cmd = ["cargo", "bench", "-p", "autodiff-runtime", "--bench", name, "--no-run", "--message-format=json"]
    cmd += cargo_args
    out = subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == name and msg.get("executable"):
            return msg["executable"]
    sys.exit(f"no executable for bench {name} in cargo's output")


class Server:
    """The Rust bench binary in `serve` mode: one request line in, one JSON line out."""

    def __init__(self, exe):
        self.proc = subprocess.Popen([exe, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, request):
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"the bench server died on {request!r}")
        return json.loads(line)["seconds"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def stat_jiffies():
    """(all CPU jiffies, idle jiffies) of the machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]


def own_jiffies(pids):
    """CPU jiffies used so far by this process and the given ones (utime + stime)."""
    total = 0
    for pid in ["self", *pids]:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


class Quiet:
    """Keeps only rounds measured while the other jobs on the machine left it idle.

    Before a round it waits (up to `max_wait` seconds) for a moment when the machine is
    idle but for this script; after the round it computes the CPU time the *other*
    processes used during it (all busy time less this process's and the server's) and, if
    that exceeds `threshold` of the cores, the round is thrown away and run again (at most
    `retries` times, after which it is kept and counted as loaded)."""

    def __init__(self, threshold, max_wait, pids, retries=20):
        self.threshold, self.max_wait, self.pids, self.retries = threshold, max_wait, pids, retries
        self.kept, self.discarded, self.loaded = [], 0, 0

    def other_load(self, interval):
        t0, i0, o0 = *stat_jiffies(), own_jiffies(self.pids)
        time.sleep(interval)
        t1, i1, o1 = *stat_jiffies(), own_jiffies(self.pids)
        return max(0.0, (t1 - t0) - (i1 - i0) - (o1 - o0)) / max(1, t1 - t0)

    def run(self, round_fn):
        """Runs round_fn() until it ran on a quiet machine; returns its result."""
        for attempt in range(self.retries + 1):
            deadline = time.time() + self.max_wait
            while self.other_load(0.3) > self.threshold and time.time() < deadline:
                pass
            t0, i0, o0 = *stat_jiffies(), own_jiffies(self.pids)
            result = round_fn()
            t1, i1, o1 = *stat_jiffies(), own_jiffies(self.pids)
            other = max(0.0, (t1 - t0) - (i1 - i0) - (o1 - o0)) / max(1, t1 - t0)
            if other <= self.threshold:
                self.kept.append(other)
                return result
            if attempt == self.retries:
                self.loaded += 1
                self.kept.append(other)
                return result
            self.discarded += 1

    def summary(self):
        worst = max(self.kept, default=0.0)
        return (
            f"{len(self.kept)} rounds kept, {self.discarded} thrown away because other jobs used more than "
            f"{100 * self.threshold:.0f} % of the cores during them, {self.loaded} kept loaded after "
            f"{self.retries} retries; worst other load in a kept round {100 * worst:.0f} %"
        )


def timed(f, calls, batch=1):
    """Seconds per call of `calls` batches of `batch` calls of f."""
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        for _ in range(batch):
            f()
        out.append((time.perf_counter() - start) / batch)
    return out


def machine():
    import platform

    load = os.getloadavg()
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": model,
        "cores": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "python": platform.python_version(),
    }


def conv(args):
    import torch

    torch.manual_seed(0)
    n, c, hw, o = 8, 64, 56, 64
    flop = 2 * o * c * 9 * n * hw * hw
    x = torch.randn(n, c, hw, hw)
    w = torch.randn(o, c, 3, 3)
    g = torch.randn(n, o, hw, hw)
    aten = torch.ops.aten

    def backward(mask):
        return lambda: aten.convolution_backward(g, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)

    theirs = {
        "forward": lambda: torch.nn.functional.conv2d(x, w, None, 1, 1),
        "grad_input": backward([True, False, False]),
        "grad_weight": backward([False, True, False]),
    }
    server = Server(bench_binary("conv", args.cargo_arg))
    quiet = Quiet(args.idle_threshold, args.max_wait, [server.proc.pid])
    info = machine()
    info["torch"] = torch.__version__
    info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    rows = []
    with torch.inference_mode():
        for threads in args.threads:
            torch.set_num_threads(threads)
            for product, f in theirs.items():
                # Warm-up of both sides (allocations, oneDNN's primitive cache, rayon's pool).
                server.ask(f"{product} {threads} 2")
                timed(f, 2)
                ours_t, theirs_t, ratios = [], [], []
                for r in range(args.rounds):

                    def one_round(r=r, product=product, threads=threads, f=f):
                        got = {}
                        for side in ["ours", "theirs"] if r % 2 == 0 else ["theirs", "ours"]:
                            time.sleep(PAUSE)
                            # The first `warmup` calls of each side in a round are dropped.
                            if side == "ours":
                                got[side] = server.ask(f"{product} {threads} {args.calls + args.warmup}")
                            else:
                                got[side] = timed(f, args.calls + args.warmup)
                            got[side] = got[side][args.warmup :]
                        return got

                    got = quiet.run(one_round)
                    a, b = statistics.median(got["ours"]), statistics.median(got["theirs"])
                    ours_t.append(a)
                    theirs_t.append(b)
                    ratios.append(b / a)
                row = {
                    "threads": threads,
                    "product": product,
                    "ours_ms": 1e3 * statistics.median(ours_t),
                    "pytorch_ms": 1e3 * statistics.median(theirs_t),
                    "speed_ratio": statistics.median(ratios),
                    "ratio_min": min(ratios),
                    "ratio_max": max(ratios),
                }
                row["ours_gflops"] = flop / row["ours_ms"] * 1e-6
                row["pytorch_gflops"] = flop / row["pytorch_ms"] * 1e-6
                rows.append(row)
                print(
                    f"{threads}T {product:<12} ours {row['ours_ms']:6.2f} ms  PyTorch {row['pytorch_ms']:6.2f} ms  "
                    f"PyTorch/ours {row['speed_ratio']:.2f} ({row['ratio_min']:.2f}-{row['ratio_max']:.2f})",
                    flush=True,
                )
    server.close()
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print()
    print(
        f"conv2d x 8×64×56×56, w 64×64×3×3, stride 1, padding 1, f32; {args.rounds} rounds × "
        f"({args.warmup} uncounted + {args.calls}) calls per side"
    )
    print(f"{info['date']}, {info['cpu']}, {info['cores']} cores, torch {info['torch']} ({info['torch_cpu_capability']}),")
    print(f"load average at start {info['loadavg_at_start']}, at end {info['loadavg_at_end']}")
    print(quiet.summary())
    info["quiet"] = quiet.summary()
    print()
    print("| threads | product | ours (ms) | PyTorch (ms) | PyTorch time / ours (median of rounds) | range |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['threads']} | {r['product']} | {r['ours_ms']:.2f} | {r['pytorch_ms']:.2f} | "
            f"**{r['speed_ratio']:.2f}×** | {r['ratio_min']:.2f}–{r['ratio_max']:.2f} |"
        )
    return {"machine": info, "rows": rows}


# (label, m, k, n, form): `nn` a·b, `tn` aᵀ·b with a stored k×m, `nt` a·bᵀ with b stored n×k.
GEMM_SHAPES = [
    ("small_mlp x·w1", 32, 784, 128, "nn"),
    ("small_mlp xᵀ·dh (dw1)", 784, 32, 128, "tn"),
    ("small_mlp dh·w1ᵀ (dx)", 32, 128, 784, "nt"),
    ("small_mlp h·w2", 32, 128, 10, "nn"),
    ("small_mlp hᵀ·dy (dw2)", 128, 32, 10, "tn"),
    ("small_mlp dy·w2ᵀ (dh)", 32, 10, 128, "nt"),
    ("matmul_chain", 64, 512, 128, "nn"),
    ("matmul_chain", 64, 128, 256, "nn"),
    ("matmul_chain aᵀ·g", 128, 64, 256, "tn"),
    ("matmul_chain g·bᵀ", 64, 256, 128, "nt"),
    ("", 256, 512, 128, "nn"),
    ("rnn g·wᵀ", 32, 256, 256, "nt"),
    ("attention Q·Kᵀ", 128, 256, 128, "nt"),
    ("conv im2col, one sample", 64, 576, 3136, "nn"),
    ("conv im2col, whole batch", 64, 576, 25088, "nn"),
]


def gemm(args):
    import numpy as np
    import threadpoolctl
    import torch

    torch.set_num_threads(1)
    limits = threadpoolctl.threadpool_limits(1)
    np.ones((2, 2)) @ np.ones((2, 2))
    blas = [
        {k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
        for i in threadpoolctl.threadpool_info()
        if i.get("user_api") == "blas"
    ]
    server = Server(bench_binary("gemm", args.cargo_arg))
    quiet = Quiet(args.idle_threshold, args.max_wait, [server.proc.pid])
    info = machine()
    info["torch"] = torch.__version__
    info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    info["numpy"] = np.__version__
    info["numpy_blas"] = blas
    rows = []
    rng = np.random.default_rng(0)
    for ty in args.types:
        dt = {"f32": np.float32, "f64": np.float64}[ty]
        for label, m, k, n, form in GEMM_SHAPES:
            if args.forms and form not in args.forms:
                continue
            flop = 2 * m * k * n
            # About 20 ms of work per batch at 50 GFLOP/s, at least one product.
            batch = max(1, int(1e9 / flop))
            a_shape, b_shape = {"nn": ((m, k), (k, n)), "tn": ((k, m), (k, n)), "nt": ((m, k), (n, k))}[form]
            a_np = rng.standard_normal(a_shape).astype(dt)
            b_np = rng.standard_normal(b_shape).astype(dt)
            if form == "tn":
                a_np = a_np.T
            if form == "nt":
                b_np = b_np.T
            c_np = np.empty((m, n), dt)
            a_t, b_t = torch.from_numpy(a_np), torch.from_numpy(b_np)
            c_t = torch.empty((m, n), dtype=a_t.dtype)
            sides = {
                "ours": lambda: server.ask(f"{ty} {m} {k} {n} {form} {args.calls} {batch}"),
                "mkl": lambda: timed(lambda: torch.mm(a_t, b_t, out=c_t), args.calls, batch),
                "openblas": lambda: timed(lambda: np.matmul(a_np, b_np, out=c_np), args.calls, batch),
            }
            for f in sides.values():
                f()
            times = {s: [] for s in sides}
            pct_mkl = []
            order = list(sides)
            for r in range(args.rounds):

                def one_round(r=r, sides=sides):
                    got = {}
                    for side in order[r % 3 :] + order[: r % 3]:
                        time.sleep(PAUSE / 4)
                        got[side] = statistics.median(sides[side]())
                    return got

                got = quiet.run(one_round)
                for s in sides:
                    times[s].append(got[s])
                pct_mkl.append(100 * got["mkl"] / got["ours"])
            rate = {s: flop / statistics.median(times[s]) * 1e-9 for s in sides}
            row = {
                "type": ty,
                "label": label,
                "m": m,
                "k": k,
                "n": n,
                "form": form,
                "ours_gflops": rate["ours"],
                "mkl_gflops": rate["mkl"],
                "openblas_gflops": rate["openblas"],
                "ours_pct_of_mkl": statistics.median(pct_mkl),
            }
            rows.append(row)
            print(
                f"{ty} {form} {m}×{k}·{k}×{n} {label:<26} ours {rate['ours']:6.1f}  MKL {rate['mkl']:6.1f}  "
                f"OpenBLAS {rate['openblas']:6.1f} GFLOP/s  ours {row['ours_pct_of_mkl']:5.1f} % of MKL",
                flush=True,
            )
    server.close()
    limits.restore_original_limits()
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print()
    print(f"GEMM, one thread, {args.rounds} rounds × {args.calls} batches; {info['date']}, {info['cpu']}")
    print(f"torch {info['torch']} ({info['torch_cpu_capability']}), numpy {info['numpy']} BLAS {blas}")
    print(f"load average at start {info['loadavg_at_start']}, at end {info['loadavg_at_end']}")
    print(quiet.summary())
    info["quiet"] = quiet.summary()
    print()
    print("| type | product | m×k·k×n | ours | MKL | OpenBLAS | ours % of MKL |")
    print("|---|---|---|---|---|---|---|")
    form_text = {"nn": "a·b", "tn": "aᵀ·b", "nt": "a·bᵀ"}
    for r in rows:
        what = f"{form_text[r['form']]}" + (f" ({r['label']})" if r["label"] else "")
        print(
            f"| {r['type']} | {what} | {r['m']}×{r['k']}·{r['k']}×{r['n']} | {r['ours_gflops']:.1f} | "
            f"{r['mkl_gflops']:.1f} | {r['openblas_gflops']:.1f} | {r['ours_pct_of_mkl']:.0f} % |"
        )
    return {"machine": info, "rows": rows}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("table", choices=["conv", "gemm"])
    p.add_argument("--rounds", type=int, default=None, help="alternating rounds (conv 15, gemm 7)")
    p.add_argument("--calls", type=int, default=5, help="calls (conv) or batches (gemm) per side per round")
    p.add_argument(
        "--warmup", type=int, default=2, help="conv: calls per side per round run first and not counted"
    )
    p.add_argument("--threads", type=lambda s: [int(t) for t in s.split(",")], default=[1, 2], help="conv: e.g. 1,2")
    p.add_argument("--types", type=lambda s: s.split(","), default=["f32", "f64"], help="gemm: e.g. f32,f64")
    p.add_argument(
        "--forms", type=lambda s: s.split(","), default=None, help="gemm: only these forms, e.g. nt (default: all)"
    )
    p.add_argument("--cargo-arg", action="append", default=[], help="extra flag for cargo bench (repeatable)")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument(
        "--idle-threshold", type=float, default=0.05, help="other jobs' share of the cores above which a round is redone"
    )
    p.add_argument("--max-wait", type=float, default=30.0, help="seconds to wait for an idle moment before a round")
    args = p.parse_args()
    if args.rounds is None:
        args.rounds = 15 if args.table == "conv" else 7
    result = conv(args) if args.table == "conv" else gemm(args)
    result["command"] = sys.argv
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
