"""Benchmark of meshsim.kernels against what a user would write otherwise (issue 4 goals).

Radius search, 20,000 points uniform in the unit cube (3D), radius giving ~16 neighbours per point:
  ours     radius_pairs(pos, r): the two-way [2, P] LongTensor, sorted by receiver then sender
  ckdtree  cKDTree(pos) + query_pairs(r, output_type="ndarray") + the two-way [2, P] LongTensor (unsorted):
           both sides include building the structure and the conversion to a two-way index tensor
  dense    torch.cdist of all pairs, mask < r, nonzero (the authors' HCMT contact search)
Fused attention, forward + backward, random graph of 50,000 nodes and 300,000 edges, 4 heads x 32 channels:
  torch    composed ops (kernels.reference: gather, multiply, clamp, exp, index_add_) with autograd
  ours     edge_attention, receiver CSR built inside the call (random edge order)
  ours_csr edge_attention with a prebuilt CSR (reused across layers in a model)
  ours_sorted  edges sorted by receiver (as radius_pairs returns them), CSR prebuilt
Each attention variant runs in its own process; peak memory is that process's RSS high-water mark (VmHWM,
reset through /proc/self/clear_refs once the inputs exist) minus its RSS at that moment: the extra memory
of one forward + backward, outputs and gradients included. torch CPU returns big blocks to the OS, and the
high-water mark catches every transient, so this is the true peak. Times: best of the repeats, wall clock.

Usage: python benchmarks/kernels.py [--quick]; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch

N_POINTS = 20_000
NEIGHBOURS = 16
N_NODES, N_EDGES, HEADS, DIM = 50_000, 300_000, 4, 32


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_radius(repeats):
    from meshsim.kernels import radius_pairs
    from scipy.spatial import cKDTree

    gen = torch.Generator().manual_seed(0)
    pos = torch.rand(N_POINTS, 3, generator=gen)
    radius = (NEIGHBOURS / N_POINTS / (4 / 3 * math.pi)) ** (1 / 3)
    radius_pairs(pos[:100], radius)  # load the Warp module outside the timing

    def ckdtree():
        pairs = torch.from_numpy(cKDTree(pos.numpy()).query_pairs(radius, output_type="ndarray"))
        return torch.cat([pairs, pairs.flip(1)]).T.contiguous()

    def dense():
        close = torch.cdist(pos, pos) < radius
        close.fill_diagonal_(False)
        return torch.stack(torch.nonzero(close, as_tuple=True))

    ours_pairs, tree_pairs = radius_pairs(pos, radius), ckdtree()
    assert ours_pairs.shape == tree_pairs.shape, (ours_pairs.shape, tree_pairs.shape)
    t_ours = best_time(lambda: radius_pairs(pos, radius), repeats)
    t_tree = best_time(ckdtree, repeats)
    t_dense = best_time(dense, max(1, repeats // 3))
    c0 = time.process_time()
    radius_pairs(pos, radius)
    cpu_ours = time.process_time() - c0
    c0 = time.process_time()
    ckdtree()
    cpu_tree = time.process_time() - c0
    return {
        "radius_points": N_POINTS,
        "radius_pairs": int(ours_pairs.shape[1]),
        "radius_value": radius,
        "radius_ours_s": t_ours,
        "radius_ckdtree_s": t_tree,
        "radius_dense_s": t_dense,
        "radius_ours_cpu_s": cpu_ours,
        "radius_ckdtree_cpu_s": cpu_tree,
        "radius_speedup_vs_dense_20k": t_dense / t_ours,
        "radius_time_ratio_vs_ckdtree_20k": t_ours / t_tree,
    }


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> None:
    """Restart the kernel's RSS high-water mark (VmHWM) at the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss_bytes() -> int:
    """VmHWM: this process's own peak RSS. (ru_maxrss would also count the parent's RSS at fork.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def attention_child(variant: str, repeats: int) -> dict:
    """One variant in a fresh process: time forward + backward and the peak memory above the inputs."""
    from meshsim.kernels import edge_attention, receiver_csr
    from meshsim.kernels.reference import edge_attention_reference

    gen = torch.Generator().manual_seed(0)
    senders = torch.randint(0, N_NODES, (N_EDGES,), generator=gen)
    receivers = torch.randint(0, N_NODES, (N_EDGES,), generator=gen)
    if variant == "ours_sorted":
        receivers = receivers.sort().values
    node = [torch.empty(N_NODES, HEADS, DIM).normal_(generator=gen).requires_grad_() for _ in range(3)]
    edge = [torch.empty(N_EDGES, HEADS, DIM).normal_(generator=gen).requires_grad_() for _ in range(2)]
    grad_out = torch.empty(N_NODES, HEADS, DIM).normal_(generator=gen)
    inputs = (*node, *edge)
    csr = receiver_csr(senders, receivers, N_NODES) if variant in ("ours_csr", "ours_sorted") else None

    if variant == "torch":
        def step():
            out = edge_attention_reference(*inputs, senders, receivers, N_NODES, "hcmt")
            return torch.autograd.grad(out, inputs, grad_out)
    else:
        def step():
            out = edge_attention(*inputs, senders, receivers, N_NODES, "hcmt", csr=csr)
            return torch.autograd.grad(out, inputs, grad_out)
        tiny = [x[:10].detach().clone().requires_grad_() for x in inputs]  # load the Warp module first
        edge_attention(*tiny, senders[:10] % 10, receivers[:10] % 10, 10, "hcmt").sum().backward()

    reset_peak_rss()
    base = rss_bytes()
    step()
    peak = peak_rss_bytes()
    cpu0 = time.process_time()
    seconds = best_time(step, repeats)
    cpu = (time.process_time() - cpu0) / repeats
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_extra_bytes": peak - base, "inputs_rss_bytes": base}


def bench_attention(repeats):
    results = {}
    for variant in ("torch", "ours", "ours_csr", "ours_sorted"):
        cmd = [sys.executable, os.path.abspath(__file__), "--child", variant, "--repeats", str(repeats)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    torch_s, ours_s = results["torch"]["seconds"], results["ours"]["seconds"]
    torch_mem, ours_mem = results["torch"]["peak_extra_bytes"], results["ours"]["peak_extra_bytes"]
    out = {
        "attention_nodes": N_NODES,
        "attention_edges": N_EDGES,
        "attention_heads_x_dim": f"{HEADS}x{DIM}",
        "attention_torch_s": torch_s,
        "attention_ours_s": ours_s,
        "attention_ours_prebuilt_csr_s": results["ours_csr"]["seconds"],
        "attention_ours_receiver_sorted_s": results["ours_sorted"]["seconds"],
        "attention_torch_peak_extra_mb": torch_mem / 2**20,
        "attention_ours_peak_extra_mb": ours_mem / 2**20,
        "attention_speedup_vs_torch_300k": torch_s / ours_s,
        "attention_speedup_prebuilt_csr": torch_s / results["ours_csr"]["seconds"],
        "attention_speedup_receiver_sorted": torch_s / results["ours_sorted"]["seconds"],
        "attention_peak_mem_ratio_300k": ours_mem / torch_mem,
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (same problem sizes)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(attention_child(args.child, args.repeats)))
        return
    repeats = 3 if args.quick else 7
    result = {"quick": args.quick, "torch_threads": torch.get_num_threads(), "load_average_1min": os.getloadavg()[0]}
    result.update(bench_radius(repeats))
    print(f"radius: ours {result['radius_ours_s']:.4f} s, cKDTree {result['radius_ckdtree_s']:.4f} s, "
          f"dense {result['radius_dense_s']:.3f} s, {result['radius_pairs']} pairs", flush=True)
    result.update(bench_attention(2 if args.quick else 5))
    torch_mb, ours_mb = result["attention_torch_peak_extra_mb"], result["attention_ours_peak_extra_mb"]
    print(f"attention: torch {result['attention_torch_s']:.3f} s, ours {result['attention_ours_s']:.3f} s, "
          f"peak extra {torch_mb:.0f} MB vs {ours_mb:.0f} MB", flush=True)
    result["load_average_1min_end"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
