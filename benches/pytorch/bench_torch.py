#!/usr/bin/env python3
"""PyTorch's side of the static-vs-dynamic study.

Runs the study's cases (simple_quadratic, small_mlp, matmul_chain, conv2d, and
the two programs attention and rnn) with the same shapes, in float32, on the CPU
with one thread by default, in both gradient modes (every input requires grad,
as published, except a regression target; parameters only, the data constant),
and writes results/pytorch_results.json in the study's schema with the single
mode "pytorch". A slice input of the Rust case (attention's sequences, the RNN's
steps) is a list of tensors here, and the loss loops over it as the Rust source
does (no batched matmul), so that both sides run the same sequence of ops. The study (`cargo run --release -p autodiff-study`)
then adds PyTorch columns and ratios to its tables.

Timing mirrors the Rust side: medians after warm-up; backward alone is timed on
a freshly recorded graph (forward in setup, untimed; grads reset to None so no
accumulation is timed), and forward alone and forward+backward are timed too.
Memory: `held_bytes` is the bytes of the tensors autograd saves for backward
(counted once per storage, inputs excluded, as the Rust side excludes them),
from torch.autograd.graph.saved_tensors_hooks. `peak_bytes` is the most bytes
PyTorch's CPU allocator had allocated at once during one forward+backward, above what
was allocated when it started (after a warm-up run): torch.profiler with
profile_memory=True records each op's own allocations and frees, and their running sum
in op order peaks there. That is the quantity the Rust side's counting allocator measures
(tensor buffers; the Rust count also sees the small allocations of shapes and nodes),
at op granularity: a peak inside one op's own scratch space is seen only as the op's
net allocation.

Usage: python benches/pytorch/bench_torch.py [--quick] [--threads N] [--scale S]
       [--reps N] [--cases a,b] [--out results]
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as tF


def scaled(value, scale, minimum):
    return max(minimum, int(round(value * scale)))


def shapes(case, scale):
    """The published shapes; --scale multiplies batch sizes, conv2d's spatial size,
    attention's sequence length and the RNN's steps."""
    if case == "simple_quadratic":
        return {"n": scaled(1000, scale, 1)}
    if case == "small_mlp":
        return {"batch": scaled(32, scale, 1), "inputs": 784, "hidden": 128, "outputs": 10}
    if case == "matmul_chain":
        return {"m": scaled(64, scale, 1), "k1": 128, "k2": 256, "k3": 512, "n": 128}
    if case == "conv2d":
        return {"batch": scaled(8, scale, 1), "channels": 64, "out_channels": 64, "size": scaled(56, scale, 3)}
    if case == "attention":
        return {"batch": scaled(4, scale, 1), "seq": scaled(128, scale, 2), "width": 256}
    if case == "rnn":
        return {"steps": scaled(50, scale, 2), "batch": scaled(32, scale, 1), "input": 256, "hidden": 256}
    raise ValueError(case)


def describe(case, s):
    if case == "simple_quadratic":
        return f"x {s['n']}"
    if case == "small_mlp":
        b, i, h, o = s["batch"], s["inputs"], s["hidden"], s["outputs"]
        return f"x {b}×{i}, w1 {i}×{h}, b1 {h}, w2 {h}×{o}, b2 {o}"
    if case == "matmul_chain":
        m, k1, k2, k3, n = s["m"], s["k1"], s["k2"], s["k3"], s["n"]
        return f"A {m}×{k1}, B {k1}×{k2}, C {k2}×{k3}, D {k3}×{n}"
    if case == "attention":
        b, n, d = s["batch"], s["seq"], s["width"]
        return f"xs {b}×({n}×{d}), wq wk wv wo {d}×{d}, targets {b}×({n}×{d})"
    if case == "rnn":
        t, b, i, h = s["steps"], s["batch"], s["input"], s["hidden"]
        return f"h0 {b}×{h}, w {h}×{h}, u {i}×{h}, xs {t}×({b}×{i}), target {b}×{h}"
    b, c, o, z = s["batch"], s["channels"], s["out_channels"], s["size"]
    return f"x {b}×{c}×{z}×{z}, w {o}×{c}×3×3, bias {o}, gamma {o}, beta {o}"


def make_inputs(case, s, dtype, gen):
    """Inputs in parameter order (same distributions as the Rust side, not the same values)."""

    def uniform(shape, bound):
        return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound

    if case == "simple_quadratic":
        arrays = [("x", uniform((s["n"],), 1.0))]
    elif case == "small_mlp":
        i, h, o = s["inputs"], s["hidden"], s["outputs"]
        arrays = [
            ("x", uniform((s["batch"], i), 1.0)),
            ("w1", uniform((i, h), i ** -0.5)),
            ("b1", uniform((h,), 0.1)),
            ("w2", uniform((h, o), h ** -0.5)),
            ("b2", uniform((o,), 0.1)),
        ]
    elif case == "matmul_chain":
        arrays = [
            ("a", uniform((s["m"], s["k1"]), 1.0)),
            ("b", uniform((s["k1"], s["k2"]), s["k1"] ** -0.5)),
            ("c", uniform((s["k2"], s["k3"]), s["k2"] ** -0.5)),
            ("d", uniform((s["k3"], s["n"]), s["k3"] ** -0.5)),
        ]
    elif case == "attention":
        n, d = s["seq"], s["width"]
        arrays = [
            ("xs", [uniform((n, d), 1.0) for _ in range(s["batch"])]),
            ("wq", uniform((d, d), d ** -0.5)),
            ("wk", uniform((d, d), d ** -0.5)),
            ("wv", uniform((d, d), d ** -0.5)),
            ("wo", uniform((d, d), d ** -0.5)),
            ("targets", [uniform((n, d), 1.0) for _ in range(s["batch"])]),
        ]
    elif case == "rnn":
        b, i, h = s["batch"], s["input"], s["hidden"]
        arrays = [
            ("h0", uniform((b, h), 1.0)),
            ("w", uniform((h, h), h ** -0.5)),
            ("u", uniform((i, h), i ** -0.5)),
            ("xs", [uniform((b, i), 1.0) for _ in range(s["steps"])]),
            ("target", uniform((b, h), 1.0)),
        ]
    else:
        c, o, z = s["channels"], s["out_channels"], s["size"]
        arrays = [
            ("x", uniform((s["batch"], c, z, z), 1.0)),
            ("w", uniform((o, c, 3, 3), (c * 9) ** -0.5)),
            ("bias", uniform((o,), 0.1)),
            ("gamma", 1.0 + uniform((o,), 0.2)),
            ("beta", uniform((o,), 0.1)),
        ]
    return [(name, convert(a, lambda t: t.to(dtype))) for name, a in arrays]


def convert(a, f):
    """f applied to a tensor, or to each tensor of a list (a slice input)."""
    return [f(t) for t in a] if isinstance(a, list) else f(a)


def flat(tensors):
    """The tensors of a list of inputs, slices expanded."""
    out = []
    for t in tensors:
        out.extend(t if isinstance(t, list) else [t])
    return out


DATA = {
    "simple_quadratic": set(),
    "small_mlp": {"x"},
    "matmul_chain": {"a"},
    "conv2d": {"x"},
    "attention": {"xs"},
    "rnn": {"h0", "xs"},
}
# Regression targets: never differentiated (the Rust cases' wrt lists leave them out).
TARGETS = {"attention": {"targets"}, "rnn": {"target"}}


def loss_fn(case, t):
    """The same source as the Rust cases (x·x, not x**2, as in cases.rs)."""
    if case == "simple_quadratic":
        (x,) = t
        return (x * x).sum()
    if case == "small_mlp":
        x, w1, b1, w2, b2 = t
        return (torch.relu(x @ w1 + b1) @ w2 + b2).sum()
    if case == "matmul_chain":
        a, b, c, d = t
        return (a @ b @ c @ d).sum()
    if case == "attention":
        xs, wq, wk, wv, wo, targets = t
        scale = 1.0 / wq.shape[1] ** 0.5
        loss = 0.0
        for x, target in zip(xs, targets):
            q, k, v = x @ wq, x @ wk, x @ wv
            a = torch.softmax(q @ k.t() * scale, dim=1)
            loss = loss + tF.mse_loss(a @ v @ wo, target)
        return loss
    if case == "rnn":
        h0, w, u, xs, target = t
        h = h0
        for x in xs:
            h = torch.tanh(h @ w + x @ u)
        return tF.mse_loss(h, target)
    x, w, bias, gamma, beta = t
    y = tF.conv2d(x, w, bias, stride=1, padding=1)
    z = tF.batch_norm(y, None, None, gamma, beta, training=True, eps=1e-5)
    return torch.relu(z).sum()


def leaves(case, arrays, wrt):
    out = []
    for name, a in arrays:
        wants = (wrt == "all" or name not in DATA[case]) and name not in TARGETS.get(case, set())
        out.append(convert(a, lambda t: t.clone().requires_grad_(wants)))
    return out


def stats(samples_s):
    us = sorted(s * 1e6 for s in samples_s)
    return {"median": statistics.median(us), "min": us[0], "max": us[-1], "samples": len(us)}


def saved_bytes(case, tensors):
    """Bytes of the storages autograd saves for backward, each counted once, inputs excluded."""
    inputs = {t.untyped_storage().data_ptr() for t in flat(tensors)}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in inputs:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn(case, tensors)
    loss.backward()
    return sum(seen.values())


def max_relative_error(analytic, reference):
    """gradcheck.rs's definition: |a-r| / max(|a|, |r|, 1e-3·max|r|)."""
    a, r = analytic.double(), reference.double()
    if not (torch.isfinite(a).all() and torch.isfinite(r).all()):
        return float("inf")
    floor = max(1e-3 * r.abs().max().item(), 2.2250738585072014e-308)
    return ((a - r).abs() / torch.maximum(torch.maximum(a.abs(), r.abs()), torch.tensor(floor, dtype=torch.float64))).max().item()


def grads(case, arrays, wrt):
    """One gradient per differentiated input; a slice's stacked, as the Rust side judges it."""
    t = leaves(case, arrays, wrt)
    loss_fn(case, t).backward()
    out = []
    for x in t:
        if isinstance(x, list) and x[0].requires_grad:
            out.append(torch.stack([e.grad for e in x]))
        elif not isinstance(x, list) and x.requires_grad:
            out.append(x.grad)
    return out


def run_case(case, wrt, s, args):
    gen = torch.Generator().manual_seed(2024)
    arrays64 = make_inputs(case, s, torch.float64, gen)
    arrays = [(n, convert(a, lambda t: t.float())) for n, a in arrays64]
    fwd, bwd, both = [], [], []
    tensors = leaves(case, arrays, wrt)
    leaf_list = flat(tensors)
    deadline = time.perf_counter() + args.max_time
    for rep in range(args.warmup + args.reps):
        # Forward alone.
        for t in leaf_list:
            t.grad = None
        start = time.perf_counter()
        loss = loss_fn(case, tensors)
        f = time.perf_counter() - start
        del loss
        # Backward alone, on a freshly recorded graph.
        for t in leaf_list:
            t.grad = None
        loss = loss_fn(case, tensors)
        start = time.perf_counter()
        loss.backward()
        b = time.perf_counter() - start
        del loss
        # Forward + backward.
        for t in leaf_list:
            t.grad = None
        start = time.perf_counter()
        loss_fn(case, tensors).backward()
        fb = time.perf_counter() - start
        if rep >= args.warmup:
            fwd.append(f)
            bwd.append(b)
            both.append(fb)
            if rep - args.warmup >= 2 and time.perf_counter() > deadline:
                break
    held = saved_bytes(case, leaves(case, arrays, wrt))
    peak = measure_peak(case, leaves(case, arrays, wrt))
    g32 = grads(case, arrays, wrt)
    g64 = grads(case, arrays64, wrt)
    err = max(max_relative_error(a, b) for a, b in zip(g32, g64))
    return {
        "name": case,
        "wrt": wrt,
        "dtype": "f32",
        "shapes": describe(case, s),
        "modes": {
            "pytorch": {
                "backward_us": stats(bwd),
                "forward_us": stats(fwd),
                "forward_backward_us": stats(both),
                "peak_bytes": peak,
                "held_bytes": held,
                "held_bytes_reported": held,
                "max_rel_err_fd": None,
                "max_rel_err_f32_vs_f64": err,
                "max_rel_err_vs_static": None,
            }
        },
    }


def measure_peak(case, tensors):
    """The peak of PyTorch's CPU allocations during one forward+backward, above the start
    (see the module doc), after a warm-up run."""
    from torch.profiler import ProfilerActivity, profile

    leaf_list = flat(tensors)
    for t in leaf_list:
        t.grad = None
    loss_fn(case, tensors).backward()
    for t in leaf_list:
        t.grad = None
    # The profiler's C++ side logs its start and stop on stderr: silenced meanwhile.
    stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            loss_fn(case, tensors).backward()
    finally:
        os.dup2(stderr, 2)
        os.close(devnull)
        os.close(stderr)
    current = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    for t in leaf_list:
        t.grad = None
    return peak


def machine():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system().lower()} {platform.machine()}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="scale 0.125, 3 repetitions")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--scale", type=float, default=None)
    p.add_argument("--reps", type=int, default=None)
    p.add_argument("--cases", default="simple_quadratic,small_mlp,matmul_chain,conv2d,attention,rnn")
    p.add_argument("--out", default="results")
    args = p.parse_args()
    args.scale = args.scale if args.scale is not None else (0.125 if args.quick else 1.0)
    args.reps = args.reps if args.reps is not None else (3 if args.quick else 20)
    args.warmup = 1 if args.quick else 3
    args.max_time = 1.0 if args.quick else 15.0
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    cases = []
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        s = shapes(case, args.scale)
        for wrt in ["all", "params"]:
            row = run_case(case, wrt, s, args)
            m = row["modes"]["pytorch"]
            print(f"{case:17} {wrt:6} backward {m['backward_us']['median']:10.1f} µs   saved {m['held_bytes'] / 1024:10.1f} KB   peak {m['peak_bytes'] / 1024:10.1f} KB")
            cases.append(row)
    results = {
        "machine": machine(),
        "threads": args.threads,
        "dtype": "f32",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "scale": args.scale,
        "torch_version": torch.__version__,
        "cases": cases,
        "depth": [],
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "pytorch_results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
