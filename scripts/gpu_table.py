#!/usr/bin/env python3
"""Prints the GPU check's table from results.jsonl (written by the Go
benchmarks and scripts/gpu_torch_bench.py in the same run). Ratios compare
implementations measured in this run; the FP8 peak is the H200/H100 SXM
datasheet's dense figure (a lead, not a measurement)."""
import json
import sys

FP8_DENSE_PEAK_TFLOPS = 1979.0


def main(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    get = lambda kind, impl: {r["shape"]: r for r in rows if r["kind"] == kind and r["impl"] == impl}
    ceil = {r["shape"]: r for r in rows if r["kind"] == "ceiling"}
    copy_bw = ceil.get("d2d-copy-1GiB", {}).get("gbps")
    mm_rate = ceil.get("bf16-matmul-8192", {}).get("tflops")
    print(f"ceilings measured here: d2d copy {copy_bw or float('nan'):.0f} GB/s, bf16 matmul {mm_rate or float('nan'):.0f} TFLOPS")

    ours, tfp8, tbf = get("gemm", "fireflyer"), get("gemm", "torch-fp8"), get("gemm", "torch-bf16")
    print("\nFP8 GEMM NT (BF16 out)  fireflyer vs torch._scaled_mm FP8 (path: block/row/tensor-wise scales) and torch BF16")
    print(f"{'shape':<24}{'ours ms':>9}{'TFLOPS':>8}{'%peak':>7}{'fp8 ms':>9}{'path':>7}{'ours/fp8':>9}{'bf16 ms':>9}{'ours/bf16':>10}")
    for shape in sorted(set(ours) | set(tfp8), key=lambda s: [int(x.split('=')[1]) for x in s.split('/')]):
        o, t, b = ours.get(shape), tfp8.get(shape), tbf.get(shape)
        f = lambda r, key, fmt: format(r[key], fmt) if r else "-"
        ratio = lambda r: f"{r['ms'] / o['ms']:.2f}x" if (o and r) else "-"
        peak = f"{100 * o['tflops'] / FP8_DENSE_PEAK_TFLOPS:.1f}" if o else "-"
        p = (t.get("path", "-").replace("scaled_mm-", "").replace("wise", "")) if t else "-"
        print(f"{shape:<24}{f(o, 'ms', '9.3f'):>9}{f(o, 'tflops', '8.1f'):>8}{peak:>7}{f(t, 'ms', '9.3f'):>9}{p:>7}{ratio(t):>9}{f(b, 'ms', '9.3f'):>9}{ratio(b):>10}")

    ours, tref = get("mla", "fireflyer"), get("mla", "torch-ref")
    print("\nMLA decode (BF16, paged 64)  fireflyer vs PyTorch reference attention")
    print(f"{'shape':<26}{'ours ms':>9}{'TFLOPS':>8}{'GB/s':>8}{'%copy':>7}{'%bf16':>7}{'ref ms':>9}{'ours/ref':>9}")
    for shape in sorted(set(ours) | set(tref)):
        o, t = ours.get(shape), tref.get(shape)
        pc = f"{100 * o['gbps'] / copy_bw:.0f}" if (o and copy_bw) else "-"
        pm = f"{100 * o['tflops'] / mm_rate:.0f}" if (o and mm_rate) else "-"
        om = f"{o['ms']:9.3f}{o['tflops']:8.1f}{o['gbps']:8.0f}" if o else f"{'-':>9}{'-':>8}{'-':>8}"
        tm = f"{t['ms']:9.3f}" if t else f"{'-':>9}"
        ratio = f"{t['ms'] / o['ms']:.2f}x" if (o and t) else "-"
        print(f"{shape:<26}{om}{pc:>7}{pm:>7}{tm}{ratio:>9}")
    print("(ours/x > 1 means ours is faster)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results.jsonl")
