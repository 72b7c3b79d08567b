#!/usr/bin/env bash
# The project's whole test run: installs what is missing, then formatting,
# vet, staticcheck, every Go test (unit, caddytest integration, real
# redis-server, cluster of Caddy processes), short fuzz runs and the
# mini-program client kit's end-to-end test. A skipped test fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
bash scripts/deps.sh
PATH="$PATH:$(go env GOPATH)/bin"

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './examples/*'))
if [ -n "$bad" ]; then echo "gofmt needed: $bad"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
staticcheck ./...

echo "== npm ci (jose interop test, client kit)"
(cd internal/interop && npm ci --no-audit --no-fund --loglevel=error)
(cd examples/miniprogram && npm ci --no-audit --no-fund --loglevel=error)

echo "== go test"
log=$(mktemp)
# -p 1: one package at a time, so that the timing margins of the integration
# tests hold on a small machine (ports are chosen free, so runs do not collide).
set +e
go test -p 1 -count=1 -v -timeout 20m ./... 2>&1 | tee "$log" | grep -E '^(=== RUN|--- FAIL|--- SKIP|FAIL|ok|panic|PASS)' | grep -v '^=== RUN'
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ]; then
	echo "go test failed; full log:"; grep -E -B5 -A40 -- '--- FAIL|panic:' "$log" | head -300
	exit "$status"
fi
if grep -E -- '--- SKIP' "$log"; then
	echo "some tests were skipped; every test must run here"; grep -E -A3 -- '--- SKIP' "$log"; exit 1
fi
passed=$(grep -cE -- '^\s*--- PASS' "$log" || true)

echo "== fuzz (short)"
go test -run '^$' -fuzz '^FuzzDecrypt$' -fuzztime 10s ./wechat
go test -run '^$' -fuzz '^FuzzDecryptUserData$' -fuzztime 10s ./wechat
go test -run '^$' -fuzz '^FuzzVerify$' -fuzztime 10s ./token
go test -run '^$' -fuzz '^FuzzLoginBody$' -fuzztime 10s .

echo "== mini-program client kit (end to end against example.Caddyfile)"
nodelog=$(mktemp)
(cd examples/miniprogram && CADDY_BIN="${CADDY_BIN:-}" npm test) 2>&1 | tee "$nodelog"
if [ "${PIPESTATUS[0]}" != 0 ]; then exit 1; fi
if grep -qE '^# (skipped|todo) [1-9]' "$nodelog"; then echo "client kit tests were skipped"; exit 1; fi

echo "go: $passed passed, 0 failed"
