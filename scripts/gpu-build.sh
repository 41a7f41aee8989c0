#!/usr/bin/env bash
# Builds the test binaries scripts/gpu-check.sh runs on a GPU machine that
# has no Go toolchain. Needs only Go: no GPU, CUDA or cgo. The binaries are
# static-ish (CGO_ENABLED=0: purego loads libcuda and NVRTC at run time) and
# land in .gpu/ (git-ignored through the *.test pattern).
#
#   scripts/gpu-build.sh            # then carry .gpu to the GPU machine
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu
for pkg in cuda cuda/jit cuda/kernels cuda/cudatest; do
	out=".gpu/$(echo "$pkg" | tr / _).test"
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go test -c -trimpath -ldflags='-s -w' -o "$out" "./$pkg"
done
# The CLI too, for `cuda info` and `cuda warmup` there (named *.test so that
# .gitignore covers it).
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags='-s -w' -o .gpu/fireflyer.test ./cmd/fireflyer
du -ch .gpu/*.test >&2
