#!/usr/bin/env bash
# Socket-level load test of caddy-wxauth with wrk, on 127.0.0.1 only.
#
# One Caddy serves three targets, each a site of its own on its own port so
# their handler chains differ by one handler only, all answering `respond "ok"`:
#   plain         respond only
#   wxauth        wxauth (Bearer token, verified-token cache), then respond
#   forward_auth  forward_auth to bench/tokencheck (verifies the same JWT on
#                 every request), then respond: what most teams run today
# plus wxmock as the WeChat stand-in. wrk runs in alternating rounds; the
# median req/s per target and the ratios to plain are printed, then a burst
# of concurrent logins must all succeed.
#
# Usage: bash bench/run.sh
# Knobs (environment): ROUNDS=5 DURATION=10s THREADS=2 CONNS=50 LOGINS=200
# Output: printed, and kept under bench/out/<timestamp>/ (gitignored).
# Runs about 3 minutes with the defaults. Ports 29019 (admin) and 29080-29084.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-50}
LOGINS=${LOGINS:-200}

ADMIN=29019
P_APP=29080  # wxauth
P_MOCK=29081 # wxmock
P_TC=29082   # tokencheck
P_PLAIN=29083
P_FA=29084
APPID=wxload0123456789
KEY=Y2FkZHktd3hhdXRoIGJlbmNobWFyayBzaWduaW5nIGtleSAwMQ== # fixed signing_key, shared with tokencheck
H=127.0.0.1

OUT=bench/out/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT/bin" "$OUT/data" "$OUT/config"
OUT=$(cd "$OUT" && pwd)
exec > >(tee "$OUT/summary.txt") 2>&1

bash scripts/deps.sh wrk >/dev/null
command -v wrk >/dev/null || { echo "wrk is missing"; exit 1; }
command -v curl >/dev/null || { echo "curl is missing"; exit 1; }

for p in $ADMIN $P_APP $P_MOCK $P_TC $P_PLAIN $P_FA; do
	if (exec 3<>"/dev/tcp/$H/$p") 2>/dev/null; then
		echo "port $p is in use; stop what listens there first"
		exit 1
	fi
done

echo "== build"
go build -o "$OUT/bin/caddy" ./cmd/caddy
go build -o "$OUT/bin/tokencheck" ./bench/tokencheck
go build -o "$OUT/bin/logins" ./bench/logins

cat >"$OUT/Caddyfile" <<CADDY
{
	admin localhost:$ADMIN
	persist_config off
	auto_https off
	default_bind $H
	grace_period 1s
	storage file_system $OUT/storage
	log {
		output file $OUT/caddy.log
		level WARN
	}
}
http://:$P_MOCK {
	wxmock {
		app_id $APPID
		app_secret load-secret
	}
}
http://:$P_PLAIN {
	respond "ok"
}
http://:$P_APP {
	wxauth {
		app_id $APPID
		app_secret load-secret
		api_base http://$H:$P_MOCK
		signing_key $KEY
	}
	respond "ok"
}
http://:$P_FA {
	forward_auth $H:$P_TC {
		uri /check
		copy_headers X-Wx-Openid X-Wx-Unionid
	}
	respond "ok"
}
CADDY

PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "== start"
"$OUT/bin/tokencheck" -listen "$H:$P_TC" -key "$KEY" -aud "$APPID" 2>"$OUT/tokencheck.log" &
PIDS+=($!)
XDG_DATA_HOME="$OUT/data" XDG_CONFIG_HOME="$OUT/config" \
	"$OUT/bin/caddy" run --config "$OUT/Caddyfile" --adapter caddyfile 2>"$OUT/caddy.stderr" &
PIDS+=($!)

# Wait (bounded) until every listener answers.
for p in $P_TC $P_MOCK $P_PLAIN $P_APP $P_FA; do
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/$H/$p") 2>/dev/null && break
		sleep 0.1
	done
	(exec 3<>"/dev/tcp/$H/$p") 2>/dev/null || { echo "nothing listens on $p; see $OUT/caddy.stderr"; exit 1; }
done

# A token through the real flow: wx.login at wxmock, then /wx/login.
code=$(curl -sf "http://$H:$P_MOCK/wxmock/login?user=load" | sed -n 's/.*"code":"\([^"]*\)".*/\1/p')
TOKEN=$(curl -sf -H 'Content-Type: application/json' -d "{\"code\":\"$code\"}" "http://$H:$P_APP/wx/login" |
	sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || { echo "login failed"; exit 1; }

status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
AUTH="Authorization: Bearer $TOKEN"
declare -A URL=([plain]="http://$H:$P_PLAIN/api/me" [wxauth]="http://$H:$P_APP/api/me" [forward_auth]="http://$H:$P_FA/api/me")
for t in plain wxauth forward_auth; do
	s=$(status -H "$AUTH" "${URL[$t]}")
	[ "$s" = 200 ] || { echo "$t with the token answered $s"; exit 1; }
done
for t in wxauth forward_auth; do
	s=$(status "${URL[$t]}")
	[ "$s" = 401 ] || { echo "$t without a token answered $s, want 401"; exit 1; }
done
echo "checks: each target answers 200 with the token; wxauth and forward_auth answer 401 without"

# wrk_rps TARGET ROUND: runs wrk once, prints req/s; fails on errors.
wrk_rps() {
	local f="$OUT/wrk-$1-$2.txt"
	wrk -t"$THREADS" -c"$CONNS" -d"$3" --latency -H "$AUTH" "${URL[$1]}" >"$f"
	if grep -qE 'Non-2xx|Socket errors' "$f"; then
		echo "wrk on $1 saw errors:" >&2
		cat "$f" >&2
		return 1
	fi
	awk '/^Requests\/sec:/ {print $2}' "$f"
}

echo "== warm-up"
for t in plain wxauth forward_auth; do wrk_rps "$t" warmup 2s >/dev/null; done

echo "== $ROUNDS rounds x 3 targets x $DURATION (wrk -t$THREADS -c$CONNS, Bearer token on every request)"
targets=(plain wxauth forward_auth)
declare -A RPS=()
for r in $(seq "$ROUNDS"); do
	line="round $r:"
	for i in 0 1 2; do
		t=${targets[$(((i + r) % 3))]} # rotate the order every round
		v=$(wrk_rps "$t" "$r" "$DURATION")
		RPS[$t]+="$v "
		line+=$(printf '  %s %.0f' "$t" "$v")
	done
	echo "$line"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
m_plain=$(echo "${RPS[plain]}" | median)
m_wx=$(echo "${RPS[wxauth]}" | median)
m_fa=$(echo "${RPS[forward_auth]}" | median)
echo "== median req/s"
printf '  plain         %10.0f\n' "$m_plain"
printf '  wxauth        %10.0f   ratio to plain %.3f\n' "$m_wx" "$(awk -v a="$m_wx" -v b="$m_plain" 'BEGIN{print a/b}')"
printf '  forward_auth  %10.0f   ratio to plain %.3f\n' "$m_fa" "$(awk -v a="$m_fa" -v b="$m_plain" 'BEGIN{print a/b}')"
for t in plain wxauth forward_auth; do
	spread=$(echo "${RPS[$t]}" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {printf "%.1f", 100*(a[NR]-a[1])/a[int((NR+1)/2)]}')
	echo "  $t: spread (max-min)/median over rounds: $spread%"
done

echo "== $LOGINS concurrent logins against wxmock"
"$OUT/bin/logins" -n "$LOGINS" -app "http://$H:$P_APP" -mock "http://$H:$P_MOCK"

echo "== done; raw output in $OUT"
