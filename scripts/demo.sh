#!/usr/bin/env bash
# The demo in one command: builds ./cmd/caddy once into bin/caddy, then
# runs that binary in the foreground in place of this script (exec), so
# Ctrl-C or a kill of this process stops Caddy itself and nothing is left
# holding the ports (`go run` would leave its child running).
#
#   bash scripts/demo.sh              # example.Caddyfile
#   bash scripts/demo.sh OTHER.Caddyfile
#
# Caddy runs in the repository, as the Caddyfile's relative paths expect.
set -euo pipefail
config=${1:-example.Caddyfile}
if [ $# -gt 1 ]; then
	echo "usage: bash scripts/demo.sh [Caddyfile]" >&2
	exit 2
fi
# The config is named from where the command was typed; Caddy runs in the repository.
if [ -f "$config" ]; then
	config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
fi
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
mkdir -p bin
# Built beside, then renamed: a demo already running keeps its binary.
tmp=$(mktemp bin/.caddy.XXXXXX)
trap 'rm -f "$tmp"' EXIT
go build -o "$tmp" ./cmd/caddy
mv -f "$tmp" bin/caddy
trap - EXIT
exec bin/caddy run --config "$config" --adapter caddyfile
