#!/usr/bin/env bash
# Installs what Fireflyer's tests need and runs them all; exits non-zero on
# any failure. Used by CI (.ci/run) and by developers on a fresh machine.
#
#   ./scripts/test.sh          # everything: format, vet, staticcheck, builds, tests
#   SKIP_INSTALL=1 ./scripts/test.sh   # do not apt-get / go install
#   FIREFLYER_LONG=1 ./scripts/test.sh # the scheduled job: also mla's full decode grid
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2  # honnef.co/go/tools, pinned
export PATH="$(go env GOPATH)/bin:$PATH"
# With -tags nvml (the go-nvml step below), go-nvml's cgo prologue triggers
# deprecation warnings from nvml.h; they are not ours and drown the log. The
# default build compiles no C header (cuda loads NVML with purego).
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -Wno-deprecated-declarations"

step() { printf '\n== %s\n' "$*" >&2; }

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
	step "install test tools"
	if ! command -v staticcheck >/dev/null || ! staticcheck -version 2>/dev/null | grep -q "(${STATICCHECK_VERSION#v})"; then
		go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
	fi
	# Debian packages the tests use (cgo-tagged tests and tools); best effort
	# when not root.
	pkgs=()
	command -v gcc >/dev/null || pkgs+=(gcc)
	command -v g++ >/dev/null || pkgs+=(g++) # cuda/kernels: CPU emulation of the CUDA sources
	# The arm64 step: qemu runs the NEON kernels' tests; the arm64 C library
	# lets it run the fireflyer binary (purego links it dynamically).
	command -v qemu-aarch64-static >/dev/null || pkgs+=(qemu-user-static)
	[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || pkgs+=(libc6-arm64-cross)
	# ep/ucx: the UCX run time its tests use (shared memory and TCP between
	# rank processes), the headers of its ABI test, ucx_info/ucx_perftest.
	[ -e /usr/include/ucp/api/ucp.h ] || pkgs+=(libucx0 libucx-dev ucx-utils)
	if [ ${#pkgs[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
	fi
fi

step "gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi

step "go vet"
go vet ./...

step "generated assembly up to date (go generate ./internal/kernels)"
go run ./internal/kernels/gen -dir internal/kernels -check

step "staticcheck"
staticcheck ./...

step "CGO_ENABLED=0 go build"
CGO_ENABLED=0 go build ./...

step "go build -tags noasm"
go build -tags noasm ./...

step "go mod tidy -diff"
go mod tidy -diff

step "cross-OS builds (darwin/arm64, windows/amd64)"
GOOS=darwin GOARCH=arm64 go build ./...
GOOS=windows GOARCH=amd64 go build ./...

step "go test -race -short"
go test -race -short -timeout 20m ./...

step "go test -tags noasm -short (pure-Go kernels)"
go test -tags noasm -short -timeout 10m ./gemm/... ./mla/... ./tensor/... ./ep/... ./internal/...

# arm64: the NEON kernels run under user-mode qemu. internal/kernels compares
# every kernel with its pure-Go twin; the gemm, mla and ep suites run on the
# NEON set (the best on arm64) with a -short subset that keeps the step to
# about two minutes on 2 cores (qemu is not a speed measurement).
if command -v qemu-aarch64-static >/dev/null; then
	step "arm64 NEON kernels under qemu-aarch64-static"
	QEMU=(-exec qemu-aarch64-static)
	GOARCH=arm64 go test -short -timeout 10m "${QEMU[@]}" ./internal/kernels/
	GOARCH=arm64 go test -short -timeout 10m "${QEMU[@]}" -run 'TestConformance$|TestBadKernels|FuzzCPU' ./gemm/cpu
	GOARCH=arm64 go test -short -timeout 10m "${QEMU[@]}" -run 'TestConformanceCPU$|TestSparseConformanceCPU$|TestNewCPU' ./mla
	GOARCH=arm64 go test -short -timeout 10m "${QEMU[@]}" ./ep/inproc
	if [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
		tmp=$(mktemp -d)
		GOARCH=arm64 go build -o "$tmp/fireflyer" ./cmd/fireflyer
		info=$(qemu-aarch64-static -L /usr/aarch64-linux-gnu "$tmp/fireflyer" info)
		rm -rf "$tmp"
		if ! grep -q 'gemm  *cpu  *usable  *NEON' <<<"$info"; then
			echo "fireflyer info on arm64 does not name the NEON kernels:" >&2
			echo "$info" >&2
			exit 1
		fi
	else
		echo "skipped fireflyer info on arm64: no /usr/aarch64-linux-gnu (apt-get install libc6-arm64-cross)" >&2
	fi
else
	step "arm64 NEON kernels: skipped, qemu-aarch64-static not installed (apt-get install qemu-user-static)"
fi

step "go test -tags ucxabi ./ep/ucx/ (UCP structure layouts against the UCX headers)"
if [ -e /usr/include/ucp/api/ucp.h ]; then
	go test -tags ucxabi -run '^TestABI$' ./ep/ucx/
else
	echo "skipped: no UCX headers (apt-get install libucx-dev)" >&2
fi

step "go test -tags nvml ./cuda/ (GPU discovery through go-nvml, DGX H200 mock)"
go test -race -tags nvml ./cuda/

# Packages with long cases (large shapes, the exhaustive grids behind
# FIREFLYER_LONG=1) run once more without -short (and without -race, which
# would multiply their time). mla's full decode grid joins them when the
# caller sets FIREFLYER_LONG=1 (the scheduled job).
# The newer suites' long grids (gemm's training layouts, FP8×FP4 and
# indexer conformance at upstream's full sizes) join them only in the
# scheduled job too: in CI they run at their default grids (the -race step).
LONG_PKGS=(./tensor/... ./ep/... ./gemm/...)
LONG_SKIP=(-skip '^(TestTrainingConformance|TestConformanceFP4|TestIndexerConformance)$')
if [ "${FIREFLYER_LONG:-0}" = 1 ]; then
	LONG_PKGS+=(./mla/...)
	LONG_SKIP=()
fi
step "go test (long cases, FIREFLYER_LONG=1): ${LONG_PKGS[*]} ${LONG_SKIP[*]}"
FIREFLYER_LONG=1 go test -timeout 30m "${LONG_SKIP[@]}" "${LONG_PKGS[@]}"

echo "all tests passed" >&2
