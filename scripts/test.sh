#!/usr/bin/env bash
# The project's whole test run: installs what is missing, then formatting,
# vet, staticcheck, every Go test (unit, caddytest integration, real
# redis-server, cluster of Caddy processes), short fuzz runs, the
# mini-program client kit's tests (end to end included) and those of its
# examples. A skipped test fails the run.
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

echo "== npm ci (jose interop test, client kit, its examples)"
(cd internal/interop && npm ci --no-audit --no-fund --loglevel=error)
for dir in kit examples/miniprogram kit/examples/uni-app kit/examples/taro; do
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done

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
go test -run '^$' -fuzz '^FuzzClaimValue$' -fuzztime 10s ./internal/guard

# One development binary for every end-to-end test below.
if [ -z "${CADDY_BIN:-}" ]; then
	CADDY_BIN="$(mktemp -d)/caddy"
	go build -o "$CADDY_BIN" ./cmd/caddy
fi
export CADDY_BIN

# node_tests DIR SCRIPT...: runs npm scripts in DIR; a failed or skipped test fails the run.
node_tests() {
	local dir=$1 nodelog
	shift
	nodelog=$(mktemp)
	for script in "$@"; do
		(cd "$dir" && npm run --silent "$script") 2>&1 | tee -a "$nodelog"
		if [ "${PIPESTATUS[0]}" != 0 ]; then exit 1; fi
	done
	if grep -qE '^# (skipped|todo) [1-9]' "$nodelog"; then echo "tests were skipped in $dir"; exit 1; fi
}

echo "== mini-program client kit (unit, recipes, package and size, end to end against example.Caddyfile)"
node_tests kit test
echo "== the example mini-program, the kit's uni-app example (built for mp-weixin) and Taro example (strict types)"
node_tests examples/miniprogram test
node_tests kit/examples/uni-app test
node_tests kit/examples/taro test

echo "== example apps (events and app_api against Caddy + wxmock)"
(cd examples/app/node && npm ci --no-audit --no-fund --loglevel=error)
node_tests examples/app/node test test:e2e
golog=$(mktemp)
(cd examples/app/go && go vet ./... && go vet -tags e2e ./... && staticcheck ./... &&
	go test -count=1 ./... && go test -tags e2e -run E2E -count=1 -v ./...) 2>&1 | tee "$golog"
if [ "${PIPESTATUS[0]}" != 0 ] || ! grep -q -- '--- PASS: TestE2E' "$golog"; then echo "the Go example app's end-to-end test did not pass"; exit 1; fi
(cd examples/app/python && python3 -m unittest -v && python3 -m unittest -v e2e_test)

echo "go: $passed passed, 0 failed"
