#!/usr/bin/env bash
# notification.sh BUILD_DIR - the notification benchmark of issue 6: jobs per second
# through the sender stage (claim in Redis, send, state record on Kafka), with the
# outbox provider and with Kannel, beside a raw sendsms loop against the same Kannel in
# the same run; prints the figures and the ratios.
#
# Starts its own stack (Kafka, Redis, notification only; ports 24092/24093/24379/24084,
# Kannel on 24201/24202/24213/24214, var dir under /tmp, an ephemeral PII key) and stops
# it on exit, also on failure or Ctrl-C.
# Phases:
#   outbox  OUTBOX_JOBS SMS jobs are written to duban.notifications while notification
#           is stopped (SIGSTOP), then it is continued and timed until every job is
#           recorded as sent (each one a file in the outbox, synced per batch)
#   planner PLANNER_EVENTS case events (duban.case.warning, one officer each, SMS and
#           email) written to duban.cases the same way, timed until both jobs of every
#           one are recorded as sent: the planner stage and the sender, end to end
#   kannel  notification restarted with DUBAN_SMS_URL; KANNEL_JOBS jobs the same way,
#           timed until every one was accepted by Kannel (HTTP 202) and recorded
#   raw     the same number of sendsms requests, same text and parameters, one after
#           the other over one keep-alive connection (curl -K), against the same Kannel;
#           then again SMS_PARALLEL at a time (curl -Z), as notification sends them
# Builds nothing: `make bench-notification` builds first.
#
# Environment (defaults in brackets): BENCH_OUTBOX_JOBS [100000], BENCH_KANNEL_JOBS
# [3000], BENCH_PLANNER_EVENTS [20000], BENCH_SMS_PARALLEL [4: notification's
# DUBAN_SMS_PARALLEL and the width of the parallel raw loop], BENCH_TIMEOUT [300] seconds
# per phase,
# BENCH_KEEP_VAR [unset: the var dir is removed at the end], BENCH_PERF [unset; N: perf
# record notification for N seconds of each phase into the var dir, kept].
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:?usage: notification.sh BUILD_DIR}
[[ $BUILD == /* ]] || BUILD=$PWD/$BUILD
BIN=$BUILD/services/notification/duban-notification
OUTBOX_JOBS=${BENCH_OUTBOX_JOBS:-100000}
KANNEL_JOBS=${BENCH_KANNEL_JOBS:-3000}
PLANNER_EVENTS=${BENCH_PLANNER_EVENTS:-20000}
SMS_PARALLEL=${BENCH_SMS_PARALLEL:-4}
TIMEOUT=${BENCH_TIMEOUT:-300}
KAFKA_PORT=24092
REDIS_PORT=24379
PORT=24084
BROKER=127.0.0.1:$KAFKA_PORT

BENCH_NAME=notification.sh
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"

[[ -x $BIN ]] || die "'$BIN' is missing; build first (make build)"
need kcat curl java python3 bearerbox

VAR=$(mktemp -d /tmp/duban-bench-notification.XXXXXX)
LOG=$VAR/bench.log
stack_started=
kannel_started=

unset DUBAN_KAFKA_BROKERS DUBAN_REDIS_URL DUBAN_SMS_URL DUBAN_SMTP_URL
export DUBAN_VAR_DIR=$VAR DUBAN_KAFKA_PORT=$KAFKA_PORT DUBAN_KAFKA_CONTROLLER_PORT=24093 \
	DUBAN_REDIS_PORT=$REDIS_PORT DUBAN_NOTIFICATION_PORT=$PORT \
	DUBAN_STACK_SERVICES=notification DUBAN_BUILD_DIR=$BUILD DUBAN_OUTBOX_DIR=$VAR/outbox \
	DUBAN_BIND=127.0.0.1 DUBAN_CONFIG_DIR=$ROOT/deploy/config DUBAN_LOG_LEVEL=${BENCH_LOG_LEVEL:-warn} \
	DUBAN_NOTIFY_QUIET_HOURS=off DUBAN_NOTIFY_SMS_PER_HOUR=100000 \
	DUBAN_KANNEL_ADMIN_PORT=24213 DUBAN_KANNEL_SMSBOX_PORT=24201 \
	DUBAN_KANNEL_SMSC_PORT=24202 DUBAN_KANNEL_SENDSMS_PORT=24214
DUBAN_PII_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export DUBAN_PII_KEY

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $stack_started ]]; then
		[[ -s $VAR/run/notification.pid ]] && kill -CONT "$(<"$VAR/run/notification.pid")" 2>/dev/null
		"$ROOT/deploy/local/stack.sh" down >>"$LOG" 2>&1 || say "stack.sh down failed; see $LOG"
	fi
	[[ -n $kannel_started ]] && "$ROOT/deploy/local/kannel.sh" stop >>"$LOG" 2>&1
	KEEP_VAR=${BENCH_PERF:-} bench_finish "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# sent: notifications recorded as sent so far (from /metrics).
sent() {
	curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" |
		awk '/^duban_notifications_total\{.*state="sent"\}/ { n += $2 } END { printf "%d\n", n }'
}

# jobs FILE N PREFIX: N urgent SMS jobs as "key<TAB>value" lines (recipients spread over
# 500 ids, so over every partition).
jobs() {
	python3 - "$1" "$2" "$3" <<'PY'
import hashlib, json, sys, time
path, n, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
now = int(time.time() * 1000)
with open(path, "w", encoding="utf-8") as f:
    for i in range(n):
        case = f"DB{prefix}{i:020d}"
        rid = f"O-BENCH-{i % 500:03d}"
        text = f"【督办】督办事项{case}已超过办结时限2026-10-12 23:59，请立即办理。"
        job = {"kind": "job", "key": hashlib.sha256(f"{prefix}{i}".encode()).hexdigest(),
               "tag": case, "case_id": case, "cause": f"bench-{i}",
               "event": "duban.case.overdue", "template": "duban.case.overdue.sms",
               "channel": "sms", "recipient_id": rid, "urgent": True, "created_at": now,
               "masked": "+86138****0000", "to": f"+86138{i % 100000000:08d}",
               "text": text, "chars": len(text), "parts": 1 if len(text) <= 70 else 2,
               "kafka_key": rid}
        f.write(rid + "\t" + json.dumps(job, ensure_ascii=False, separators=(",", ":")) + "\n")
PY
}

# events FILE N: N duban.case.warning events of as many cases, as "key<TAB>value" lines,
# each telling one of the demo directory's officers by SMS and email (2 jobs an event).
events() {
	python3 - "$1" "$2" <<'PY'
import json, sys, uuid
path, n = sys.argv[1], int(sys.argv[2])
officers = [("U-IG-05", "O-IG05-ZHENG"), ("U-IG-05", "O-IG05-FENG"), ("U-CMO", "O-CMO-ZHAO"),
            ("U-CMO", "O-CMO-SUN"), ("U-IG-03", "O-IG03-LI"), ("U-IG-05", "O-IG05-WANG")]
run = uuid.uuid4().hex[:6].upper()
with open(path, "w", encoding="utf-8") as f:
    for i in range(n):
        case = f"DBP{run}{i:017d}"
        unit, officer = officers[i % len(officers)]
        ev = {"specversion": "1.0", "id": f"bench-{run}-{i}", "source": "/duban/deadline",
              "type": "duban.case.warning", "time": "2026-10-09T00:00:01+08:00",
              "datacontenttype": "application/json",
              "data": {"case_id": case, "clock": "resolve", "unit": unit, "officer": officer,
                       "due_at": "2026-10-12T23:59:59+08:00"}}
        f.write(case + "\t" + json.dumps(ev, ensure_ascii=False, separators=(",", ":")) + "\n")
PY
}

# run_phase NAME N FILE TOPIC HEADER...: writes FILE's records to TOPIC (with the kcat -H
# headers given) while notification is stopped, continues it and prints "seconds rate
# cpu_seconds" once N more notifications are recorded as sent (cpu_seconds: what
# notification used meanwhile).
run_phase() {
	local name=$1 n=$2 file=$3 topic=$4 pid base start end target h headers=()
	shift 4
	for h in "$@"; do
		headers+=(-H "$h")
	done
	pid=$(<"$VAR/run/notification.pid")
	base=$(sent)
	kill -STOP "$pid"
	kcat -P -b "$BROKER" -t "$topic" -K $'\t' "${headers[@]}" -l "$file" \
		-X enable.idempotence=true -X linger.ms=5 -X partitioner=murmur2_random >>"$LOG" 2>&1
	target=$((base + n))
	t0=$(ticks "$pid")
	start=$(now_us)
	kill -CONT "$pid"
	if [[ -n ${BENCH_PERF:-} ]]; then
		perf record -g -o "$VAR/perf-$name.data" -p "$pid" -- sleep "$BENCH_PERF" >>"$LOG" 2>&1 &
	fi
	end=$((start + TIMEOUT * 1000000))
	while (($(sent) < target)); do
		(($(now_us) > end)) && die "$name: only $(($(sent) - base)) of $n sent after ${TIMEOUT}s"
		sleep 0.05
	done
	awk -v us=$(($(now_us) - start)) -v n="$n" -v t=$(($(ticks "$pid") - t0)) -v hz="$CLK_TCK" \
		'BEGIN { printf "%.2f %.0f %.2f\n", us / 1e6, n * 1e6 / us, t / hz }'
}

say "starting Kafka, Redis and notification in $VAR"
stack_started=1
"$ROOT/deploy/local/stack.sh" up >>"$LOG" 2>&1 || die "the stack did not come up"

say "outbox: $OUTBOX_JOBS jobs"
jobs "$VAR/outbox-jobs.tsv" "$OUTBOX_JOBS" O
read -r outbox_s outbox_rate outbox_cpu < <(run_phase outbox "$OUTBOX_JOBS" \
	"$VAR/outbox-jobs.tsv" duban.notifications duban-kind=job)
files=$(find "$VAR/outbox/sms" -name '*.json' | wc -l)
((files == OUTBOX_JOBS)) || die "outbox holds $files files, not $OUTBOX_JOBS"

say "files: the same number of files made by a bare loop (O_TMPFILE, write, linkat)"
read -r files_s files_rate < <(python3 - "$VAR/filebase" "$OUTBOX_JOBS" <<'PY'
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
body = ("{" + "x" * 400 + "}").encode()
t = time.monotonic()
for i in range(n):
    fd = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o640)
    os.write(fd, body)
    # linkat(AT_FDCWD, "/proc/self/fd/N", AT_FDCWD, path, AT_SYMLINK_FOLLOW)
    if libc.linkat(-100, f"/proc/self/fd/{fd}".encode(), -100,
                   f"{d}/{i:064d}.json".encode(), 0x400) != 0:
        raise OSError(ctypes.get_errno(), "linkat")
    os.close(fd)
    if i % 500 == 499:
        os.sync()
s = time.monotonic() - t
print(f"{s:.2f} {n / s:.0f}")
PY
)

say "planner: $PLANNER_EVENTS case events on duban.cases, 2 jobs each, to the outbox"
events "$VAR/events.tsv" "$PLANNER_EVENTS"
read -r planner_s planner_rate planner_cpu < <(run_phase planner $((2 * PLANNER_EVENTS)) \
	"$VAR/events.tsv" duban.cases content-type=application/cloudevents+json \
	duban-type=duban.case.warning)

say "kannel: starting bearerbox, smsbox and the fake SMSC"
kannel_started=1
url=$("$ROOT/deploy/local/kannel.sh" start 2>>"$LOG" | tail -n 1)
kill -TERM "$(<"$VAR/run/notification.pid")"
while [[ -s $VAR/run/notification.pid ]] && kill -0 "$(<"$VAR/run/notification.pid")" 2>/dev/null; do
	sleep 0.1
done
DUBAN_SMS_URL=$url DUBAN_NOTIFY_SEND_TIMEOUT_MS=10000 DUBAN_SMS_PARALLEL=$SMS_PARALLEL \
	"$ROOT/deploy/local/stack.sh" up >>"$LOG" 2>&1 || die "notification did not restart"

say "kannel: $KANNEL_JOBS jobs through notification"
jobs "$VAR/kannel-jobs.tsv" "$KANNEL_JOBS" K
read -r kannel_s kannel_rate kannel_cpu < <(run_phase kannel "$KANNEL_JOBS" \
	"$VAR/kannel-jobs.tsv" duban.notifications duban-kind=job)

say "raw: $KANNEL_JOBS sendsms requests in a loop over one connection"
python3 - "$VAR/kannel-jobs.tsv" "$url" "http://127.0.0.1:$PORT/v1/dlr" >"$VAR/raw.curl" <<'PY'
import json, sys, urllib.parse
path, base, dlr = sys.argv[1], sys.argv[2], sys.argv[3]
for line in open(path, encoding="utf-8"):
    job = json.loads(line.split("\t", 1)[1])
    q = urllib.parse.urlencode({"to": job["to"], "text": job["text"], "charset": "UTF-8",
                                "coding": "2", "dlr-mask": "27",
                                "dlr-url": dlr + "?k=raw&t=raw&m=raw&s=%d&at=%T"})
    print(f'url = "{base}&{q}"')
    print('output = "/dev/null"')
PY
# raw_loop NAME CURL_ARGS...: the requests of raw.curl through curl; prints seconds and
# requests/s, fails unless Kannel accepted every one.
raw_loop() {
	local name=$1 start us accepted
	shift
	start=$(now_us)
	curl -s "$@" -K "$VAR/raw.curl" -w '%{http_code}\n' >"$VAR/$name.codes"
	us=$(($(now_us) - start))
	accepted=$(grep -c '^202$' "$VAR/$name.codes" || true)
	((accepted == KANNEL_JOBS)) || die "$name: $accepted of $KANNEL_JOBS accepted"
	awk -v us="$us" -v n="$KANNEL_JOBS" 'BEGIN { printf "%.2f %.0f\n", us / 1e6, n * 1e6 / us }'
}
read -r raw_s raw_rate < <(raw_loop raw)
say "raw: the same, $SMS_PARALLEL at a time (curl -Z)"
read -r par_s par_rate < <(raw_loop raw-parallel -Z --parallel-max "$SMS_PARALLEL")

printf '\n%-36s %8s %9s %10s %16s\n' "notification benchmark" jobs seconds "jobs/s" \
	"notification CPU"
printf '%-36s %8d %9s %10s %14ss\n' "outbox provider" "$OUTBOX_JOBS" "$outbox_s" \
	"$outbox_rate" "$outbox_cpu"
printf '%-36s %8d %9s %10s\n' "  bare file loop, same file system" "$OUTBOX_JOBS" "$files_s" \
	"$files_rate"
printf '%-36s %8d %9s %10s %14ss\n' "case events -> jobs -> outbox (jobs)" \
	$((2 * PLANNER_EVENTS)) "$planner_s" "$planner_rate" "$planner_cpu"
printf '%-36s %8d %9s %10s %16s\n' "  the same, in case events" "$PLANNER_EVENTS" "$planner_s" \
	"$((planner_rate / 2))" ""
printf '%-36s %8d %9s %10s %14ss\n' "Kannel through notification" "$KANNEL_JOBS" "$kannel_s" \
	"$kannel_rate" "$kannel_cpu"
printf '%-36s %8d %9s %10s\n' "raw sendsms loop (curl -K)" "$KANNEL_JOBS" "$raw_s" "$raw_rate"
printf '%-36s %8d %9s %10s\n' "  $SMS_PARALLEL at a time (curl -Z)" "$KANNEL_JOBS" "$par_s" \
	"$par_rate"
awk -v n="$OUTBOX_JOBS" -v c="$outbox_cpu" -v f="$files_rate" -v o="$outbox_rate" 'BEGIN {
	printf "\noutbox: %.0f us of notification CPU per job; outbox / bare file loop: %.2f\n",
		c * 1e6 / n, o / f }'
awk -v o="$outbox_rate" -v k="$kannel_rate" -v r="$raw_rate" -v p="$par_rate" \
	-v w="$SMS_PARALLEL" 'BEGIN {
	printf "\noutbox: %.0f jobs/s (target >= 20000: %s)\n", o, (o >= 20000) ? "met" : "NOT met"
	printf "Kannel through notification (%d at a time) / raw loop: %.2f (target >= 0.80: %s)\n",
		w, k / r, (k / r >= 0.8) ? "met" : "NOT met"
	printf "Kannel through notification / raw loop %d at a time: %.2f\n", w, k / p }'
