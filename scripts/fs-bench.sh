#!/usr/bin/env bash
# fs-bench.sh: compare `fireflyer fs bench` with fio on the same file, back to
# back, and print a Markdown table of ratios (ours / fio) for BENCHMARKS.md.
#
# usage: scripts/fs-bench.sh [DIR] [RUNTIME_S] [REPS]
#   DIR        where the 256 MiB test file goes (default /tmp/fs-bench)
#   RUNTIME_S  seconds per run (default 5)
#   REPS       runs per side; the table shows medians (default 3)
# Needs fio (installed with apt-get when missing and running as root) and
# python3 (to read JSON).
set -euo pipefail
DIR=${1:-/tmp/fs-bench}
RT=${2:-5}
REPS=${3:-3}
SIZE=256M
WORKERS=${WORKERS:-$(nproc)}
POSIXQD=${POSIXQD:-16}
cd "$(dirname "$0")/.."
if ! command -v fio >/dev/null; then
	if [ "$(id -u)" = 0 ]; then apt-get install -y fio >/dev/null; else echo "fs-bench: fio not installed" >&2; exit 1; fi
fi
mkdir -p "$DIR"
F="$DIR/bench.dat"
BIN="$DIR/fireflyer"
go build -o "$BIN" ./cmd/fireflyer
# Lay the file out once (fio and ours both reuse it).
"$BIN" fs bench --backend posix --rw read --bs 1m --iodepth 4 --size $SIZE --runtime 0.1 "$F" >/dev/null

fio_iops() { # args: fio options...; prints "iops MiB/s"
	fio --name=fsb --filename="$F" --size=$SIZE --runtime="$RT" --time_based --group_reporting \
		--output-format=json "$@" 2>/dev/null |
		python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; r=j["read"] if j["read"]["io_bytes"] else j["write"]; print(r["iops"], r["bw_bytes"]/2**20)'
}
ours_iops() { # args: fs bench options...; prints "iops MiB/s"
	"$BIN" fs bench --size $SIZE --runtime "${RT}s" --json "$@" "$F" |
		python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["iops"], j["bw_mib_s"])'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| case | ours | fio | ratio (ours/fio) | target |"
echo "|---|---|---|---|---|"
row() { # name target metric(1=iops,2=MiB/s) "fio args" "our args"
	local name=$1 target=$2 col=$3 fargs=$4 oargs=$5 f o
	: >"$DIR/f.txt"; : >"$DIR/o.txt"
	for i in $(seq "$REPS"); do
		# Alternate which side runs first, so neither always follows the
		# other's cache or disk state.
		if [ $((i % 2)) = 1 ]; then
			# shellcheck disable=SC2086
			fio_iops $fargs | awk -v c="$col" '{print $c}' >>"$DIR/f.txt"
			# shellcheck disable=SC2086
			ours_iops $oargs | awk -v c="$col" '{print $c}' >>"$DIR/o.txt"
		else
			# shellcheck disable=SC2086
			ours_iops $oargs | awk -v c="$col" '{print $c}' >>"$DIR/o.txt"
			# shellcheck disable=SC2086
			fio_iops $fargs | awk -v c="$col" '{print $c}' >>"$DIR/f.txt"
		fi
	done
	f=$(median <"$DIR/f.txt"); o=$(median <"$DIR/o.txt")
	local unit=IOPS; [ "$col" = 2 ] && unit=MiB/s
	awk -v n="$name" -v o="$o" -v f="$f" -v t="$target" -v u="$unit" \
		'BEGIN {printf "| %s | %.0f %s | %.0f %s | %.2f | %s |\n", n, o, u, f, u, o/f, t}'
}
URING="--ioengine=io_uring --fixedbufs --registerfiles"
row "uring 4K randread QD64, warm" "≥0.9" 1 "$URING --invalidate=0 --rw=randread --bs=4k --iodepth=64" "--backend uring --rw randread --bs 4k --iodepth 64"
# fio submits each I/O with its own io_uring_enter unless told to batch; this
# row makes both sides reap and resubmit 16 at a time.
FIOBATCH="--iodepth_batch_submit=16 --iodepth_batch_complete_min=16 --iodepth_batch_complete_max=64"
row "uring 4K randread QD64, batches of 16 both sides, warm" "≥0.9" 1 "$URING $FIOBATCH --invalidate=0 --rw=randread --bs=4k --iodepth=64" "--backend uring --batch 16 --rw randread --bs 4k --iodepth 64"
row "uring 1M read QD8, warm" "≥0.95" 2 "$URING --invalidate=0 --rw=read --bs=1m --iodepth=8" "--backend uring --rw read --bs 1m --iodepth 8"
row "uring 4K randwrite QD64, warm" "—" 1 "$URING --invalidate=0 --rw=randwrite --bs=4k --iodepth=64" "--backend uring --rw randwrite --bs 4k --iodepth 64"
row "posix 4K randread QD$POSIXQD, $WORKERS workers vs psync numjobs=$WORKERS, warm" "≥0.8" 1 "--ioengine=psync --invalidate=0 --rw=randread --bs=4k --numjobs=$WORKERS" "--backend posix --workers $WORKERS --rw randread --bs 4k --iodepth $POSIXQD"
row "uring 4K randread QD64, O_DIRECT (cold)" "≥0.9" 1 "$URING --direct=1 --rw=randread --bs=4k --iodepth=64" "--backend uring --direct --rw randread --bs 4k --iodepth 64"
row "uring 1M read QD8, O_DIRECT (cold)" "≥0.95" 2 "$URING --direct=1 --rw=read --bs=1m --iodepth=8" "--backend uring --direct --rw read --bs 1m --iodepth 8"
row "posix 4K randread QD$POSIXQD, $WORKERS workers vs psync numjobs=$WORKERS, O_DIRECT" "≥0.8" 1 "--ioengine=psync --direct=1 --rw=randread --bs=4k --numjobs=$WORKERS" "--backend posix --direct --workers $WORKERS --rw randread --bs 4k --iodepth $POSIXQD"
rm -f "$F" "$DIR/f.txt" "$DIR/o.txt"
