#!/usr/bin/env bash
# A/B of BenchmarkProtectedOverhead across builds, in one run: each round
# runs every test binary once (-test.count 1), the order rotating from round
# to round, so drift and other work on the machine hit every build alike.
# Build the binaries first, one per tree: (cd <tree> && go test -c -o <name>.test ./e2e/)
# (the root package, ".", for trees from before the move of the benchmarks to e2e/).
#
# Usage: bash bench/ab.sh OUTDIR ROUNDS NAME.test...
# Output: OUTDIR/<name>.txt (one benchmark line per round), OUTDIR/load.txt,
# and the median [min .. max] of each figure per build, printed.
set -euo pipefail
out=$1 rounds=$2
shift 2
bins=("$@")
mkdir -p "$out"
echo "nproc: $(nproc); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)" >"$out/load.txt"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/load.txt"
n=${#bins[@]}
for ((i = 0; i < rounds; i++)); do
	for ((j = 0; j < n; j++)); do
		b=${bins[$(((i + j) % n))]}
		# stderr holds Caddy's log lines; the figures are on stdout.
		"$b" -test.run '^$' -test.bench ProtectedOverhead -test.count 1 2>/dev/null |
			grep '^Benchmark' >>"$out/$(basename "$b" .test).txt" || true
	done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/load.txt"
cat "$out/load.txt"
for b in "${bins[@]}"; do
	name=$(basename "$b" .test)
	printf '%s:' "$name"
	for m in added-ns added-allocs own-ns own-allocs floor-ns headers-ns headers-allocs check-ns check-allocs; do
		awk -v m="$m/req" '{for (i = 1; i <= NF; i++) if ($i == m) print $(i-1)}' "$out/$name.txt" | sort -n |
			awk -v m="$m" '{a[NR] = $1} END {if (NR) printf " %s %.0f [%.0f .. %.0f]", m, (a[int((NR+1)/2)] + a[int(NR/2)+1]) / 2, a[1], a[NR]}'
	done
	echo
done
