#!/usr/bin/env python3
"""PyTorch side of scripts/gpu-check.sh: times PyTorch on the shapes the Go
benchmarks use, on the same GPU, and appends JSON lines to --results:

  gemm  torch FP8 (torch._scaled_mm: block-scaled 1x128/128x128 where this
        torch supports it, else row-wise, else tensor-wise) and BF16 matmul
        at DeepGEMM's shapes (M in {64, 128, 4096} x six (N, K) pairs);
  mla   a PyTorch reference attention over the paged cache (gather, matmul,
        softmax, matmul) at FlashMLA's shapes (b=128, s_k=4096,
        h_q in {16, 128}, s_q in {1, 2});
  ceiling  device-to-device copy bandwidth (bytes read + written) and the
        BF16 matmul rate (8192^3), measured in this run.

Every timing is per call: the median of three batches of back-to-back
calls timed with CUDA events after warm-up, on random (never zero) data.
"""
import argparse
import json
import math
import sys
import traceback

import torch

NK = [(2112, 7168), (24576, 1536), (32768, 512), (7168, 16384), (4096, 7168), (7168, 2048)]
MS = [64, 128, 4096]


def median_ms(fn, warmup=3, reps=10):
    """Milliseconds per call: three batches of reps back-to-back calls, each
    timed between two CUDA events (as the Go benchmarks do); median batch."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    per = []
    for _ in range(3):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(reps):
            fn()
        e.record()
        e.synchronize()
        per.append(s.elapsed_time(e) / reps)
    per.sort()
    return per[1]


def emit(out, **kw):
    out.write(json.dumps(kw) + "\n")
    out.flush()
    print(json.dumps(kw))


def calc_diff(x, y):
    x, y = x.double(), y.double()
    return (1 - 2 * (x * y).sum() / (x * x + y * y).sum()).item()


def fp8_variants(a, b, m, n, k):
    """Yields (name, fn) for the FP8 _scaled_mm forms to try, best first."""
    kb, nb = math.ceil(k / 128), math.ceil(n / 128)
    dev = a.device
    sa = torch.rand(m, kb, device=dev) + 0.5
    sb = torch.rand(nb, kb, device=dev) + 0.5
    bt = b.t()  # (K, N) column-major, as _scaled_mm wants
    # Block-scaled: A 1x128 (scale (M, K/128), outer-dim-major),
    # B 128x128 (scale for bt laid out (K/128, N/128)).
    sa_mn = sa.t().contiguous().t()
    yield "scaled_mm-blockwise", lambda: torch._scaled_mm(a, bt, scale_a=sa_mn, scale_b=sb.t(), out_dtype=torch.bfloat16)
    yield "scaled_mm-blockwise", lambda: torch._scaled_mm(a, bt, scale_a=sa_mn, scale_b=sb.t().contiguous(), out_dtype=torch.bfloat16)
    ra = torch.rand(m, 1, device=dev) + 0.5
    rb = torch.rand(1, n, device=dev) + 0.5
    yield "scaled_mm-rowwise", lambda: torch._scaled_mm(a, bt, scale_a=ra, scale_b=rb, out_dtype=torch.bfloat16)
    one = torch.ones((), device=dev)
    yield "scaled_mm-tensorwise", lambda: torch._scaled_mm(a, bt, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)


def bench_gemm(out):
    dev = torch.device("cuda")
    for m in MS:
        for n, k in NK:
            shape = f"m={m}/n={n}/k={k}"
            flops = 2 * m * n * k
            x = torch.randn(m, k, device=dev)
            w = torch.randn(n, k, device=dev)
            a, b = x.to(torch.float8_e4m3fn), w.to(torch.float8_e4m3fn)
            tried = []
            for name, fn in fp8_variants(a, b, m, n, k):
                try:
                    fn()
                    torch.cuda.synchronize()
                except Exception as e:  # this torch lacks the form for this shape
                    tried.append(f"{name}: {str(e).splitlines()[0][:160]}")
                    continue
                ms = median_ms(fn)
                emit(out, kind="gemm", impl="torch-fp8", path=name, shape=shape, ms=ms, tflops=flops / ms / 1e9)
                break
            else:
                print(f"{shape}: no FP8 _scaled_mm form ran", file=sys.stderr)
            for t in tried:
                print(f"{shape}: {t}", file=sys.stderr)
            xb, wb = x.bfloat16(), w.bfloat16()
            ms = median_ms(lambda: xb @ wb.t())
            emit(out, kind="gemm", impl="torch-bf16", shape=shape, ms=ms, tflops=flops / ms / 1e9)
            del x, w, a, b, xb, wb
    torch.cuda.empty_cache()


def bench_mla(out):
    dev = torch.device("cuda")
    batch, seq_k, page, d, dv = 128, 4096, 64, 576, 512
    pages_per = seq_k // page
    pages = batch * pages_per
    kv = torch.randn(pages, page, d, device=dev, dtype=torch.bfloat16)
    block_table = torch.randperm(pages, device=dev, dtype=torch.int32).view(batch, pages_per)
    for hq in (16, 128):
        for sq in (1, 2):
            shape = f"b={batch}/sk={seq_k}/hq={hq}/sq={sq}"
            rows = sq * hq
            q = torch.randn(batch, sq, hq, d, device=dev, dtype=torch.bfloat16)
            scale = 1 / math.sqrt(d)
            mask = None
            if sq > 1:  # causal: query i sees keys t < s_k - (sq - 1 - i)
                t = torch.arange(seq_k, device=dev)
                lim = seq_k - (sq - 1 - torch.arange(sq, device=dev))
                mask = (t[None, :] >= lim[:, None]).repeat_interleave(hq, 0)  # [rows, s_k]

            def ref():
                k = kv[block_table.long()].view(batch, seq_k, d)
                s = torch.matmul(q.view(batch, rows, d), k.transpose(1, 2)).float() * scale
                if mask is not None:
                    s = s.masked_fill(mask, float("-inf"))
                p = torch.softmax(s, dim=-1).to(torch.bfloat16)
                return torch.matmul(p, k[..., :dv])

            ms = median_ms(ref, warmup=2, reps=5)
            flops = 2 * batch * rows * seq_k * (d + dv)
            byts = kv.numel() * 2 + q.numel() * 2 + batch * rows * dv * 2
            emit(out, kind="mla", impl="torch-ref", shape=shape, ms=ms, tflops=flops / ms / 1e9, gbps=byts / ms / 1e6)
    del kv
    torch.cuda.empty_cache()


def bench_ceilings(out):
    dev = torch.device("cuda")
    n = 1 << 30  # 1 GiB each way
    src = torch.randint(0, 255, (n,), device=dev, dtype=torch.uint8)
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src))
    emit(out, kind="ceiling", impl="torch", shape="d2d-copy-1GiB", ms=ms, tflops=0.0, gbps=2 * n / ms / 1e6)
    del src, dst
    a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    ms = median_ms(lambda: a @ b)
    emit(out, kind="ceiling", impl="torch", shape="bf16-matmul-8192", ms=ms, tflops=2 * 8192**3 / ms / 1e9)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    args = ap.parse_args()
    print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
    rc = 0
    with open(args.results, "a") as out:
        for part in (bench_ceilings, bench_gemm, bench_mla):
            try:
                part(out)
            except Exception:
                traceback.print_exc()
                rc = 1
    sys.exit(rc)


if __name__ == "__main__":
    main()
