#!/usr/bin/env bash
# Put bandwidth of ep/ucx against ucx_perftest -t ucp_put_bw, same UCX_TLS,
# same message size and message count, interleaved in one run (two rounds).
# Prints one line per case: perftest and ep/ucx in MiB/s and their ratio.
# Needs libucx0 and ucx-utils. Usage: scripts/ucx-bench.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
command -v ucx_perftest >/dev/null || { echo "ucx_perftest not found (apt-get install ucx-utils)" >&2; exit 1; }
go test -c -o /tmp/ucx-bench.test ./ep/ucx/ >/dev/null
ucx_info -v | head -1
uptime
port=$((20000 + RANDOM % 20000))
perftest() { # tls size count -> MiB/s
	UCX_TLS=$1 ucx_perftest -p "$port" -t ucp_put_bw -s "$2" -n "$3" >/dev/null 2>&1 &
	local srv=$!
	sleep 0.5
	UCX_TLS=$1 ucx_perftest localhost -p "$port" -t ucp_put_bw -s "$2" -n "$3" 2>/dev/null | awk '/^Final:/ {print $6}'
	wait "$srv" || true
}
printf '%-16s %10s %10s %12s %12s %7s\n' UCX_TLS size count perftest ep/ucx ratio
for tls in posix,cma,self tcp,self; do
	for size in 7392 1048576 16777216; do
		# the same count as BenchmarkPutProcesses
		count=$(( (8<<30) / size )); count=$(( count > 2000000 ? 2000000 : count )); count=$(( count < 256 ? 256 : count ))
		if [ "$tls" = tcp,self ]; then count=$(( count / 16 < 16 ? 16 : count / 16 )); fi
		for r in $(seq "$rounds"); do
			p=$(perftest "$tls" "$size" "$count")
			e=$(/tmp/ucx-bench.test -test.run '^$' -test.bench "^BenchmarkPutProcesses/$tls/$size\$" -test.benchtime 1x 2>/dev/null | awk '/MiB\/s/ {print $(NF-1)}')
			printf '%-16s %10d %10d %12.0f %12.0f %7.2f\n' "$tls" "$size" "$count" "$p" "$e" "$(echo "$e / $p" | bc -l)"
		done
	done
done
