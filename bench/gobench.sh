#!/usr/bin/env bash
# In-process Go benchmarks of caddy-wxauth (bench_test.go), -count 5, then
# the median and range of every figure (and benchstat's table when it can be
# fetched). Runs only the benchmarks (-run '^$'); their Caddy picks free
# ports and has no admin endpoint, so it does not clash with the test
# suite. About 3 minutes.
#
# Usage: bash bench/gobench.sh [extra go test flags, e.g. -benchtime 2s]
# Output: printed, and kept under bench/out/go-<timestamp>/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
OUT=bench/out/go-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

{
	echo "nproc: $(nproc); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
	echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); $(go version)"
	echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

# Caddy's own startup lines go to stderr; the figures go to bench.txt.
go test -run '^$' -bench . -count 5 "$@" . 2>"$OUT/stderr.txt" | tee "$OUT/bench.txt"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"

echo "== median [min .. max] of the runs"
awk -f bench/summarize.awk "$OUT/bench.txt" | tee "$OUT/summary.txt"
# benchstat, when the module proxy serves it (its intervals need -count 6+).
if go run golang.org/x/perf/cmd/benchstat@latest "$OUT/bench.txt" >"$OUT/benchstat.txt" 2>/dev/null; then
	echo "benchstat summary in $OUT/benchstat.txt"
fi
echo "output in $OUT"
