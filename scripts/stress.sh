#!/usr/bin/env bash
# The proof that test runs sharing a machine do not collide: runs the Go
# tests (go test -p 1 -count=1 ./...) N times, two runs at a time, each pair
# in two temporary clones of HEAD, while a busy loop keeps one core busy.
# Prints each run's result and a summary line, keeps the logs of failed runs,
# and exits non-zero if any run failed. A skipped test fails its run, as in
# scripts/test.sh. Uncommitted changes are not tested: commit first.
#
# Usage: bash scripts/stress.sh [N]   (N defaults to 6; a run takes minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

n=${1:-6}
if ! [[ $n =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: $0 [N]" >&2
	exit 2
fi
bash scripts/deps.sh
head=$(git rev-parse HEAD)
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	echo "stress: uncommitted changes are not tested; running $head"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/wxauth-stress.XXXXXX")
logs="$work/logs"
mkdir "$logs"
hog=""
runs=() # process ids of the runs under way

cleanup() {
	trap - EXIT INT TERM
	if [ -n "$hog" ]; then kill "$hog" 2>/dev/null || true; fi
	for pid in "${runs[@]}"; do
		kill -- "-$pid" 2>/dev/null || true # the run's own process group
	done
	wait
	rm -rf "$work/a" "$work/b"
	if [ -z "$(ls -A "$logs")" ]; then
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for c in a b; do
	git clone -q --no-checkout . "$work/$c"
	git -C "$work/$c" checkout -q --detach "$head"
	# The jose interop test needs internal/interop's packages.
	if [ -d internal/interop/node_modules ]; then
		cp -r internal/interop/node_modules "$work/$c/internal/interop/"
	else
		(cd "$work/$c/internal/interop" && npm ci --no-audit --no-fund --loglevel=error)
	fi
done

# One core busy for the whole stress run.
(while :; do :; done) &
hog=$!

# start I CLONE: starts run I in CLONE in its own process group (so that
# cleanup can end it with everything it started); its log and its time in
# seconds go to $work/run-I.log and .secs.
start() {
	setsid bash -c 'cd "$1" && s=$SECONDS && go test -p 1 -count=1 -v -timeout 20m ./... >"$2" 2>&1; rc=$?; echo $((SECONDS - s)) >"$2.secs"; exit $rc' \
		_ "$work/$2" "$work/run-$1.log" &
	runs+=("$!")
}

passed=0
failed=0
began=$SECONDS
for ((i = 1; i <= n; i += 2)); do
	batch=("$i")
	((i + 1 <= n)) && batch+=("$((i + 1))")
	runs=()
	start "${batch[0]}" a
	((${#batch[@]} == 2)) && start "${batch[1]}" b
	for j in "${!batch[@]}"; do
		k=${batch[$j]}
		log="$work/run-$k.log"
		status=0
		wait "${runs[$j]}" || status=$?
		took=$(cat "$log.secs" 2>/dev/null || echo "?")
		rm -f "$log.secs"
		if [ "$status" = 0 ] && ! grep -qE -- '--- SKIP' "$log"; then
			passed=$((passed + 1))
			echo "run $k: PASS (${took}s)"
			rm -f "$log"
		else
			failed=$((failed + 1))
			mv "$log" "$logs/"
			what=$(grep -E -- '^\s*--- (FAIL|SKIP)|^panic:|^FAIL' "$logs/run-$k.log" | head -5 | tr -s ' \t' ' ' | paste -sd';' - || true)
			echo "run $k: FAIL (${took}s, exit $status): ${what:-see log}"
		fi
	done
	runs=()
done

echo "stress: $n runs of go test -p 1 -count=1 ./..., two at a time in two clones of ${head:0:12}, one core busy: $passed passed, $failed failed in $((SECONDS - began))s"
if ((failed)); then
	echo "stress: logs of the failed runs are in $logs"
	exit 1
fi
