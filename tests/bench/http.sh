#!/bin/sh
# http.sh BUILD_DIR - wrk against a plain libmicrohttpd hello world and against libs/http
# (the same bytes, and a Jansson-built document), in the same run; prints req/s of
# each and the ratios to the raw server.
# Builds nothing: `make bench` builds first.
set -eu

build=${1:?usage: http.sh BUILD_DIR}
raw_bin=$build/tests/bench/bench_http_raw
dub_bin=$build/tests/bench/bench_http_dub
raw_port=${BENCH_RAW_PORT:-18091}
dub_port=${BENCH_DUB_PORT:-18092}
duration=${BENCH_DURATION:-5s}

for bin in "$raw_bin" "$dub_bin"; do
  [ -x "$bin" ] || { echo "http.sh: '$bin' is missing; build first" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "http.sh: wrk is not installed" >&2; exit 1; }

raw_pid=
dub_pid=
cleanup() {
  for pid in $raw_pid $dub_pid; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$raw_bin" "$raw_port" &
raw_pid=$!
"$dub_bin" "$dub_port" &
dub_pid=$!

wait_up() {
  i=0
  until curl -fsS -o /dev/null "$1"; do
    i=$((i + 1))
    [ "$i" -lt 100 ] || { echo "http.sh: '$1' did not come up" >&2; exit 1; }
    sleep 0.05
  done
}
wait_up "http://127.0.0.1:$raw_port/"
wait_up "http://127.0.0.1:$dub_port/v1/hello"

# wrk -t2 -c50 -d5s; prints the Requests/sec figure.
rate() {
  wrk -t2 -c50 -d"$duration" "$1" | awk '/^Requests\/sec:/ { print $2 }'
}
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a ? b : a) }'; }

# BENCH_ROUNDS > 1 rotates the order and keeps each side's best round, which is
# steadier on a shared 2-core machine.
rounds=${BENCH_ROUNDS:-1}
raw=0
dub=0
sta=0
i=0
while [ "$i" -lt "$rounds" ]; do
  case $((i % 3)) in
  0) r=$(rate "http://127.0.0.1:$raw_port/")
     d=$(rate "http://127.0.0.1:$dub_port/v1/hello")
     s=$(rate "http://127.0.0.1:$dub_port/v1/static") ;;
  1) d=$(rate "http://127.0.0.1:$dub_port/v1/hello")
     s=$(rate "http://127.0.0.1:$dub_port/v1/static")
     r=$(rate "http://127.0.0.1:$raw_port/") ;;
  *) s=$(rate "http://127.0.0.1:$dub_port/v1/static")
     r=$(rate "http://127.0.0.1:$raw_port/")
     d=$(rate "http://127.0.0.1:$dub_port/v1/hello") ;;
  esac
  [ "$rounds" -gt 1 ] && awk -v n=$((i + 1)) -v r="$r" -v d="$d" -v s="$s" \
    'BEGIN { printf "round %d: raw %.0f  dub-static %.0f  dub-json %.0f req/s\n", n, r, s, d }'
  raw=$(max "$raw" "$r")
  dub=$(max "$dub" "$d")
  sta=$(max "$sta" "$s")
  i=$((i + 1))
done
awk -v r="$raw" -v d="$dub" -v s="$sta" 'BEGIN {
  printf "raw libmicrohttpd hello world: %.0f req/s\n", r
  printf "libs/http, same bytes:         %.0f req/s  ratio %.3f\n", s, (r > 0 ? s / r : 0)
  printf "libs/http, Jansson-built JSON: %.0f req/s  ratio %.3f\n", d, (r > 0 ? d / r : 0)
}'
