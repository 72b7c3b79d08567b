#!/usr/bin/env bash
# Installs what the tests and benchmarks need when it is missing:
# redis-server (cluster and Redis store tests), Node.js + npm (client kit
# tests), Debian's chromium and a Chinese font (the web login's real-browser
# test, which finds chromium, chromium-browser or $CHROME; the font makes
# its screenshots readable), staticcheck, and wrk when called with "wrk".
# Idempotent.
set -euo pipefail

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v node >/dev/null && command -v npm >/dev/null || need_apt+=(nodejs npm)
if [ -z "${CHROME:-}" ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
	need_apt+=(chromium)
fi
fc-list :lang=zh family 2>/dev/null | grep -q . || need_apt+=(fonts-wqy-microhei)
if [[ " $* " == *" wrk "* ]]; then command -v wrk >/dev/null || need_apt+=(wrk); fi

if ((${#need_apt[@]})); then
	echo "deps: installing ${need_apt[*]} with apt-get"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

export GOTOOLCHAIN=local
STATICCHECK_VERSION=v0.8.2
if ! command -v staticcheck >/dev/null && [ ! -x "$(go env GOPATH)/bin/staticcheck" ]; then
	echo "deps: installing staticcheck $STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
