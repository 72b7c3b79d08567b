#!/usr/bin/env bash
# In-process Go benchmarks of caddy-wxauth (e2e/bench_test.go, and
# internal/guard's cache_bench_test.go and guard_bench_test.go), -count 5,
# then the median and range of every figure (and benchstat's table when it
# can be fetched). Runs only the benchmarks
# (-run '^$'); their Caddy picks free ports and has no admin endpoint, so it
# does not clash with the test suite. About 7 minutes for all of them; the
# token cache's at 1M tokens take about 1.5 GiB of memory.
#
# Usage: bash bench/gobench.sh [go test flags, e.g. -bench ProtectedOverhead -count 3]
# Output: printed, and kept under bench/out/go-<timestamp>/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
OUT=bench/out/go-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

{
	echo "nproc: $(nproc); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
	echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); $(go version)"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

# The test binaries (internal/guard's and e2e's) are run directly, not
# through go test, which would mix their stderr (Caddy's and certmagic's log
# lines) into the figures. go test flags become the binaries' -test.* flags.
go test -c -o "$OUT/guard.test" ./internal/guard
go test -c -o "$OUT/e2e.test" ./e2e
args=()
for a in -run '^$' -bench . -count 5 "$@"; do
	case $a in
	-test.*) args+=("$a") ;;
	-*) args+=("-test.${a#-}") ;;
	*) args+=("$a") ;;
	esac
done
# run DIR BINARY: runs a test binary in its package's folder, as go test does.
run() { (cd "$1" && "$2" "${args[@]}") 2>>"$OUT/stderr.txt" | tee -a "$OUT/bench.txt"; }
: >"$OUT/bench.txt"
run e2e "$PWD/$OUT/e2e.test"
run internal/guard "$PWD/$OUT/guard.test"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"

echo "== median [min .. max] of the runs"
awk -f bench/summarize.awk "$OUT/bench.txt" | tee "$OUT/summary.txt"
# benchstat, when the module proxy serves it (its intervals need -count 6+).
if go run golang.org/x/perf/cmd/benchstat@latest "$OUT/bench.txt" >"$OUT/benchstat.txt" 2>/dev/null; then
	echo "benchstat summary in $OUT/benchstat.txt"
fi
echo "output in $OUT"
