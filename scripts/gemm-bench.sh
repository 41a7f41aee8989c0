#!/usr/bin/env bash
# gemm-bench.sh — one run that compares the gemm cpu backend (FP8, BF16 out)
# with OpenBLAS SGEMM (numpy from /usr/bin/python3, on the dequantized
# float32 problem), gonum's Sgemm and a register-only FMA peak loop, on the
# same shapes, in interleaved rounds. Prints markdown tables (BENCHMARKS.md).
#
# Needs: apt-get install -y python3-numpy libopenblas0-pthread
# Usage: scripts/gemm-bench.sh [-rounds N] [-shapes "M,N,K;..."] [-grouped=false]
#
# Usage: scripts/gemm-bench.sh -threads 1 -kernels avx2 -mla   (an AVX2-only CPU's view)
# Usage: scripts/gemm-bench.sh -sparse -rounds 2 -threads 1   (V3.2 sparse prefill vs OpenBLAS)
#
# OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) may be set in the environment;
# they force an older OpenBLAS kernel, so they are unset for this command
# only, to compare with OpenBLAS at its best on this CPU. With -kernels avx2
# the bench itself adds a column with OPENBLAS_CORETYPE=Haswell (OpenBLAS's
# AVX2 kernel), set for that column's helper process only.
set -euo pipefail
cd "$(dirname "$0")/.."
env | grep '^OPENBLAS' | sed 's/^/environment (unset for the benchmark): /' >&2 || true
exec env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE go run ./examples/gemm-bench "$@"
