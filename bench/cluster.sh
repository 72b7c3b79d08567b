#!/usr/bin/env bash
# Cluster benchmark of caddy-wxauth on 127.0.0.1 only: one redis-server,
# three Caddy instances with wxauth `store redis`, wxmock in a fourth Caddy,
# all on ports chosen free at run time. It measures store commands per
# second per instance at steady state, logout propagation between the
# instances during mixed traffic, and store commands with 10,000 tokens
# cached on one instance; it fails when a logged-out token is served past
# the 1 s bound. bench/cluster/main.go says how.
#
# Usage: bash bench/cluster.sh [flags of bench/cluster, e.g. -users 1000 -mixed 20s]
# Needs redis-server (scripts/deps.sh installs it). About 2-3 minutes.
# Output: printed, and kept under bench/out/cluster-<timestamp>/ (gitignored),
# with every process's log.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

OUT=bench/out/cluster-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT/bin"
OUT=$(cd "$OUT" && pwd)

command -v redis-server >/dev/null || bash scripts/deps.sh >/dev/null
command -v redis-server >/dev/null || { echo "redis-server is missing"; exit 1; }

{
	echo "nproc: $(nproc); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
	echo "$(go version); $(redis-server --version | cut -d' ' -f1-3)"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

echo "== build"
go build -o "$OUT/bin/caddy" ./cmd/caddy
go build -o "$OUT/bin/cluster" ./bench/cluster

# The program stops every process it started (and the kernel kills them
# should it die first).
"$OUT/bin/cluster" -caddy "$OUT/bin/caddy" -dir "$OUT/run" "$@" 2>&1 | tee "$OUT/summary.txt"
status=${PIPESTATUS[0]}
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
echo "output in $OUT"
exit "$status"
