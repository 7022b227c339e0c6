#!/usr/bin/env bash
# assignment.sh BUILD_DIR - the assignment benchmark of issue 4: 1,000 officers, 200
# rules, BENCH_EVENTS duban.case.received events (about 1 KB each) streamed through one
# assignment instance, beside a kcat consume-and-produce of the same records measured in
# the same run; prints assignments/s, the baseline and their ratio.
#
# Starts its own Kafka and Redis (ports 21092/21093/21379, assignment on 21082, var dir
# under $TMPDIR or /tmp) and stops them on exit, also on failure or Ctrl-C. Phases:
#   kcat        the events are produced to a scratch topic shaped like duban.cases, then
#               timed: kcat -C reads them all and pipes them into kcat -P, which writes
#               them to a second scratch topic with the service's producer settings
#   assignment  assignment is started once (its first start rebuilds from the empty
#               duban.cases) and stopped; the same events are produced to duban.cases;
#               assignment is started again and timed until its metrics count every
#               event assigned. Then every event must have an assignment in duban.cases,
#               nothing may be in duban.dlq, and the workloads must add up.
# The CPU of assignment, the broker, Redis and kcat is sampled from /proc per phase.
# Builds nothing: `make bench-assignment` builds first.
#
# Environment (defaults in brackets): BENCH_EVENTS [100000], BENCH_TIMEOUT [120] seconds
# for the assignment phase, BENCH_KAFKA_PORT [21092], BENCH_KAFKA_CONTROLLER_PORT [21093],
# BENCH_REDIS_PORT [21379], BENCH_ASSIGNMENT_PORT [21082], BENCH_LOG_LEVEL [info],
# BENCH_KEEP_VAR [unset: the var dir is removed at the end].
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:?usage: assignment.sh BUILD_DIR}
[[ $BUILD == /* ]] || BUILD=$PWD/$BUILD
BIN=$BUILD/services/assignment/duban-assignment

EVENTS=${BENCH_EVENTS:-100000}
TIMEOUT=${BENCH_TIMEOUT:-120}
KAFKA_PORT=${BENCH_KAFKA_PORT:-21092}
CONTROLLER_PORT=${BENCH_KAFKA_CONTROLLER_PORT:-21093}
REDIS_PORT=${BENCH_REDIS_PORT:-21379}
PORT=${BENCH_ASSIGNMENT_PORT:-21082}
BROKER=127.0.0.1:$KAFKA_PORT
SERVICE=http://127.0.0.1:$PORT
TOKEN=dub_demo_ops_2a7e4d91c06b5f38
# The settings of libs/kafka/producer.c, for the kcat baseline and the load.
KCAT_PRODUCER=(-X enable.idempotence=true -X acks=all -X linger.ms=5
	-X socket.nagle.disable=true -X partitioner=murmur2_random)
IN_TOPIC=bench.assignment.in
OUT_TOPIC=bench.assignment.out

BENCH_NAME=assignment.sh
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"

[[ -x $BIN ]] || die "'$BIN' is missing; build first (make build)"
need kcat curl java python3
ports_free "$KAFKA_PORT" "$CONTROLLER_PORT" "$REDIS_PORT" "$PORT"

VAR=$(mktemp -d "${TMPDIR:-/tmp}/duban-bench-assignment.XXXXXX")
LOG=$VAR/bench.log
RUN_ID=b$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')
stack_started=

# The stack's environment: DESIGN.md's variables, on the benchmark's own ports.
unset DUBAN_KAFKA_BROKERS DUBAN_REDIS_URL DUBAN_SMS_URL DUBAN_SMTP_URL
export DUBAN_VAR_DIR=$VAR DUBAN_KAFKA_PORT=$KAFKA_PORT \
	DUBAN_KAFKA_CONTROLLER_PORT=$CONTROLLER_PORT DUBAN_REDIS_PORT=$REDIS_PORT \
	DUBAN_ASSIGNMENT_PORT=$PORT DUBAN_STACK_SERVICES='' DUBAN_BUILD_DIR=$BUILD \
	DUBAN_OUTBOX_DIR=$VAR/outbox DUBAN_BIND=127.0.0.1 DUBAN_CONFIG_DIR=$VAR/config \
	DUBAN_LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
DUBAN_PII_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export DUBAN_PII_KEY

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $stack_started ]]; then
		"$ROOT/deploy/local/stack.sh" down >>"$LOG" 2>&1 || say "stack.sh down failed; see $LOG"
	fi
	bench_finish "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- measuring -----------------------------------------------------------------------

create_topic() { # create_topic NAME PARTITIONS
	java -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
		-Dlog4j2.configurationFile="$ROOT/deploy/local/log4j2-tools.properties" \
		-cp "$ROOT/deploy/kafka/lib/*" org.apache.kafka.tools.TopicCommand \
		--bootstrap-server "$BROKER" --create --if-not-exists --topic "$1" \
		--partitions "$2" --replication-factor 1 >>"$LOG" 2>&1 || die "could not create $1"
	for ((i = 0; i < 100; i++)); do
		[[ $(partitions "$1") == "$2" ]] && return 0
		sleep 0.1
	done
	die "$1 did not appear"
}
produce() { # produce TOPIC FILE
	kcat -P -q -b "$BROKER" -t "$1" -K '\t' -H content-type=application/cloudevents+json \
		"${KCAT_PRODUCER[@]}" -l "$2" 2>>"$LOG"
}
# assigned: the number of assignments the service counted so far.
assigned() {
	curl -fsS --max-time 2 "$SERVICE/metrics" 2>/dev/null |
		awk '/^duban_assignment_total[{ ]/ { s += $NF } END { printf "%d\n", s + 0 }'
}
service_pid() { cat "$VAR/run/assignment.pid"; }
stop_service() {
	local pid
	pid=$(service_pid)
	kill -TERM "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	rm -f "$VAR/run/assignment.pid"
}

busy_before

# --- the stack and the data ----------------------------------------------------------

mkdir -p "$VAR/config"
cp -r "$ROOT/deploy/config/." "$VAR/config/"
python3 "$HERE/assignment_data.py" config "$VAR/config"
python3 "$HERE/assignment_data.py" events "$EVENTS" "$RUN_ID" >"$VAR/events.txt"
BYTES=$(($(wc -c <"$VAR/events.txt") / EVENTS))
say "$EVENTS events of about $BYTES bytes, 1000 officers, 200 rules; var dir $VAR"

say "starting Kafka and Redis (log $LOG)"
stack_started=1
"$ROOT/deploy/local/stack.sh" up >>"$LOG" 2>&1 || die "the stack did not come up"
KAFKA_PID=$(<"$VAR/kafka/kafka.pid")
REDIS_PID=$(<"$VAR/redis/redis.pid")
CASES_PARTITIONS=$(partitions duban.cases)
create_topic "$IN_TOPIC" "$CASES_PARTITIONS"
create_topic "$OUT_TOPIC" "$CASES_PARTITIONS"

# --- kcat: consume and produce the same records --------------------------------------

produce "$IN_TOPIC" "$VAR/events.txt" || die "kcat could not produce to $IN_TOPIC"
say "kcat: $IN_TOPIC -> $OUT_TOPIC, $EVENTS records"
t0=$(now_us)
k0=$(ticks "$KAFKA_PID")
r0=$(ticks "$REDIS_PID")
kcat -C -q -b "$BROKER" -t "$IN_TOPIC" -o beginning -e -f '%k\t%s\n' 2>>"$LOG" |
	kcat -P -q -b "$BROKER" -t "$OUT_TOPIC" -K '\t' "${KCAT_PRODUCER[@]}" 2>>"$LOG" &
pipe=$!
kc=0
while kill -0 "$pipe" 2>/dev/null; do
	# The two kcat processes' CPU, read while they live.
	# shellcheck disable=SC2046 # one argument per pid
	t=$(ticks $(pgrep -P "$$" kcat || true))
	((t > kc)) && kc=$t
	sleep 0.2
done
wait "$pipe" || die "the kcat pipe failed"
t1=$(now_us)
copied=$(end_offsets "$OUT_TOPIC")
((copied == EVENTS)) || die "kcat copied $copied of $EVENTS records"
KCAT_RATE=$(awk -v n="$EVENTS" -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (d / 1e6) }')
KCAT_CPU="kcat $(pct "$kc" $((t1 - t0))), kafka $(pct $(($(ticks "$KAFKA_PID") - k0)) $((t1 - t0))), redis $(pct $(($(ticks "$REDIS_PID") - r0)) $((t1 - t0)))"
say "kcat: $EVENTS records in $(((t1 - t0) / 1000)) ms: $KCAT_RATE records/s ($KCAT_CPU)"

# --- assignment ----------------------------------------------------------------------

export DUBAN_STACK_SERVICES=assignment
say "assignment: first start (rebuilds from the empty duban.cases)"
"$ROOT/deploy/local/stack.sh" up >>"$LOG" 2>&1 || die "assignment did not come up"
stop_service
say "assignment: producing $EVENTS events to duban.cases while it is stopped"
produce duban.cases "$VAR/events.txt" || die "kcat could not produce to duban.cases"
rm -f "$VAR/events.txt"

say "assignment: started again, timed until it assigned all $EVENTS"
t0=$(now_us)
"$ROOT/deploy/local/stack.sh" up >>"$LOG" 2>&1 || die "assignment did not come up"
PID=$(service_pid)
a0=$(ticks "$PID")
k0=$(ticks "$KAFKA_PID")
r0=$(ticks "$REDIS_PID")
first_t=
first_n=0
until=$((t0 + TIMEOUT * 1000000))
n=0
while :; do
	n=$(assigned || echo 0)
	tn=$(now_us)
	if [[ -z $first_t ]] && ((n > 0)); then
		first_t=$tn
		first_n=$n
	fi
	((n >= EVENTS || tn > until)) && break
	sleep 0.1
done
t1=$(now_us)
ASSIGN_TICKS=$(($(ticks "$PID") - a0))
ASSIGN_CPU="assignment $(pct "$ASSIGN_TICKS" $((t1 - t0))), kafka $(pct $(($(ticks "$KAFKA_PID") - k0)) $((t1 - t0))), redis $(pct $(($(ticks "$REDIS_PID") - r0)) $((t1 - t0)))"
((n >= EVENTS)) || die "only $n of $EVENTS assigned in ${TIMEOUT}s"
[[ -n $first_t ]] || die "no assignment seen"
RATE=$(awk -v n=$((EVENTS - first_n)) -v d=$((t1 - first_t)) 'BEGIN { printf "%.0f", (d > 0 ? n / (d / 1e6) : 0) }')
RATE_ALL=$(awk -v n="$EVENTS" -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (d / 1e6) }')
say "assignment: $EVENTS in $(((t1 - t0) / 1000)) ms from start, $(((t1 - first_t) / 1000)) ms from the first assignment: $RATE assignments/s ($ASSIGN_CPU)"

# --- checks --------------------------------------------------------------------------

cases=$(end_offsets duban.cases)
((cases == 2 * EVENTS)) || die "duban.cases holds $cases records, not $((2 * EVENTS)) (every event and its assignment)"
dlq=$(end_offsets duban.dlq)
((dlq == 0)) || die "$dlq records in duban.dlq"
open=0
for ((g = 0; g < 50; g++)); do
	body=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$SERVICE/v1/units/G-$(printf '%03d' "$g")/workload")
	open=$((open + $(python3 -c 'import json,sys; b=json.load(sys.stdin); print(b["open"] + b["needs_manual"])' <<<"$body")))
done
((open == EVENTS)) || die "the workloads add up to $open open cases, not $EVENTS"
say "checks: duban.cases holds every event and one assignment each; duban.dlq is empty; workloads add up to $EVENTS"

# --- the table -----------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
verdict=met
((RATE >= 20000)) || verdict="not met"
printf '\nassignment benchmark: %s, %s events of %s bytes, 1000 officers, 200 rules, %s CPUs, %s\n' \
	"$(date -Is)" "$EVENTS" "$BYTES" "$NCPU" "$(uname -r)"
printf '%-44s %-22s %-8s %s\n' figure value /kcat verdict
printf '%-44s %-22s %-8s %s\n' "kcat consume | kcat produce (baseline)" "$KCAT_RATE records/s" - -
printf '%-44s %-22s %-8s %s\n' "assignment, from the first assignment" "$RATE assignments/s" \
	"$(ratio "$RATE" "$KCAT_RATE")" "$verdict (>= 20000/s)"
printf '%-44s %-22s %-8s %s\n' "assignment, from process start" "$RATE_ALL assignments/s" \
	"$(ratio "$RATE_ALL" "$KCAT_RATE")" -
printf '\nCPU (100%% = one core):\n  kcat        %s\n  assignment  %s\n' "$KCAT_CPU" "$ASSIGN_CPU"
# What one assignment costs the service itself, whatever else the machine is doing.
printf '  assignment used %s us of CPU per assignment (all its threads)\n' \
	"$(awk -v t="$ASSIGN_TICKS" -v hz="$CLK_TCK" -v n="$EVENTS" 'BEGIN { printf "%.1f", 1e6 * t / hz / n }')"
((BUSY_BEFORE < 20)) || printf '\nnote: machine %s%% busy before the start: not clean figures\n' "$BUSY_BEFORE"
exit 0
