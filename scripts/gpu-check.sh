#!/usr/bin/env bash
# One prepared check of the CUDA backend on a GPU machine with CUDA 13
# (driver, NVRTC) and PyTorch but no Go: it runs the test binaries that
# scripts/gpu-build.sh built beforehand (.gpu/*.test), then PyTorch on the
# same shapes, and prints a short table last. Full logs go to OUTDIR
# (at most 8 files). Budget: under 6 minutes.
#
#   scripts/gpu-check.sh OUTDIR
#
# Steps (each with its own timeout; a failed step does not stop the rest):
#   env      nvidia-smi, driver, NVRTC and torch versions,
#            `fireflyer cuda info` and `fireflyer cuda warmup`
#            (every kernel compiled by NVRTC into the JIT cache)  -> env.txt
#   cuda     driver/NVRTC/launch/cluster/TMA tests               -> cuda.log
#   kernels  FP8 GEMM and MLA decode vs float64 references       -> kernels.log
#   bench    Go benchmarks at DeepGEMM/FlashMLA shapes           -> bench.log
#   torch    PyTorch FP8/BF16 GEMM, reference MLA, copy and
#            matmul ceilings on the same GPU                     -> torch.log
#   table    merged results (results.jsonl)                      -> summary.txt
set -uo pipefail
OUTDIR=${1:?usage: scripts/gpu-check.sh OUTDIR}
cd "$(dirname "$0")/.."
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
T0=$(date +%s)
export PYTHONUNBUFFERED=1
export FIREFLYER_REQUIRE_GPU=1   # a missing driver or NVRTC fails instead of skipping
export FIREFLYER_JIT_CACHE_DIR=${FIREFLYER_JIT_CACHE_DIR:-/tmp/fireflyer-jit}
export FIREFLYER_JIT_PRINT_COMPILER_COMMAND=1
export FIREFLYER_GPU_RESULTS="$OUTDIR/results.jsonl"
: >"$FIREFLYER_GPU_RESULTS"

for b in cuda cuda_kernels; do
	if [ ! -x ".gpu/$b.test" ]; then
		echo "missing .gpu/$b.test: run scripts/gpu-build.sh on a machine with Go first" >&2
		exit 2
	fi
done

# Locate libcuda.so.1 and NVRTC; the loader also searches by itself, this
# only makes the log say where they came from and covers pip-installed NVRTC.
find_lib() { # name, dirs...
	local name=$1
	shift
	for d in "$@"; do
		for f in "$d"/$name; do
			[ -e "$f" ] && { echo "$f"; return 0; }
		done
	done
	return 1
}
PYSITE=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1 '; then
	if f=$(find_lib 'libcuda.so.1' /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/cuda/compat); then
		export FIREFLYER_LIBCUDA=$f
	fi
fi
if f=$(find_lib 'libnvrtc.so.1[0-9]*' /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64 \
	"$PYSITE/nvidia/cu13/lib" "$PYSITE/nvidia/cuda_nvrtc/lib" /usr/lib/x86_64-linux-gnu); then
	export FIREFLYER_LIBNVRTC=$f
	export LD_LIBRARY_PATH="$(dirname "$f")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" # libnvrtc-builtins beside it
fi

declare -A STATUS
step() { # name, timeout seconds, log file, command...
	local name=$1 limit=$2 log=$3
	shift 3
	local t=$(date +%s)
	echo "== $name (limit ${limit}s)" >&2
	timeout --kill-after=5 "$limit" "$@" >"$OUTDIR/$log" 2>&1
	local rc=$?
	case $rc in
	0) STATUS[$name]="PASS" ;;
	124 | 137) STATUS[$name]="TIMEOUT after ${limit}s" ;;
	*) STATUS[$name]="FAIL (exit $rc)" ;;
	esac
	STATUS[$name]="${STATUS[$name]} in $(($(date +%s) - t))s, log $log"
	echo "   ${STATUS[$name]}" >&2
	grep -E '^(--- FAIL|FAIL|panic:)|Error|error:' "$OUTDIR/$log" | head -20 >&2
}

{
	date -u
	nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1
	echo "FIREFLYER_LIBCUDA=${FIREFLYER_LIBCUDA:-} FIREFLYER_LIBNVRTC=${FIREFLYER_LIBNVRTC:-}"
	ldconfig -p 2>/dev/null | grep -E 'libcuda.so|libnvrtc' | head
	python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' 2>&1
	if [ -x .gpu/fireflyer.test ]; then
		timeout 30 .gpu/fireflyer.test cuda info 2>&1
		timeout 90 .gpu/fireflyer.test cuda warmup 2>&1
		echo "warmup exit $?"
	fi
} >"$OUTDIR/env.txt" 2>&1
grep -E '^(device|nvrtc|warmup exit)|error' "$OUTDIR/env.txt" >&2

step cuda 60 cuda.log .gpu/cuda.test -test.v -test.run 'GPU|SystemDriverHere'
step kernels 150 kernels.log .gpu/cuda_kernels.test -test.v -test.run 'GPU'
step bench 100 bench.log .gpu/cuda_kernels.test -test.run '^$' -test.bench 'GPU' -test.benchtime 10x
step torch 100 torch.log python3 scripts/gpu_torch_bench.py --results "$FIREFLYER_GPU_RESULTS"

{
	echo "fireflyer GPU check, $(date -u +%FT%TZ), $(($(date +%s) - T0))s"
	head -3 "$OUTDIR/env.txt" | tail -2
	for s in cuda kernels bench torch; do printf '%-8s %s\n' "$s" "${STATUS[$s]}"; done
	grep -hE '^(=== RUN|--- (PASS|FAIL|SKIP)).*GPU|calc_diff' "$OUTDIR/kernels.log" | grep -E 'FAIL|SKIP' | head -10
	python3 scripts/gpu_table.py "$FIREFLYER_GPU_RESULTS" 2>&1
} | tee "$OUTDIR/summary.txt"
case "${STATUS[cuda]}${STATUS[kernels]}" in
PASS*PASS*) exit 0 ;;
*) exit 1 ;;
esac
