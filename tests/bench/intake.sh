#!/usr/bin/env bash
# intake.sh BUILD_DIR - the intake benchmark of issue 3: 1 KB Chinese-text events posted
# over 64 keep-alive connections, beside a libmicrohttpd hello world and a kcat producer
# measured in the same run; prints events/s, p50/p99 latency and the ratios.
#
# Starts its own stack (Kafka, Redis, intake only; ports 29092/29093/26379/28081, var dir
# under /tmp, an ephemeral PII key) and stops it on exit, also on failure or Ctrl-C.
# Phases, each bounded (about 90 s in all):
#   hello   wrk against bench_http_raw (GET /), same -t/-c/-d as the intake phases
#   kcat    kcat produces the same event KCAT_EVENTS times to a scratch topic with as many
#           partitions as duban.cases, with intake's producer settings (idempotence,
#           acks=all, linger.ms=5, murmur2_random)
#   single  wrk POSTs one event per request; only 202s count as events
#   batch   wrk POSTs batches of BATCH_SIZE events; accepted per-event results count
#           ("not available" while intake answers a batch with anything but 207)
#   inbound INBOUND_EVENTS events are produced to duban.inbound while intake is stopped
#           (SIGSTOP), then intake is continued and timed until duban.cases holds as many
#           more records ("not available" if a probe event never reaches duban.cases)
#   stages  bench_stages: the CPU one event costs on one thread in each library stage
#           (parse, validation, sealing, encoding), and the rate all CPUs could reach if
#           they did nothing else: the ceiling Jansson and the rest put on every figure
# During each phase the CPU of intake, the broker, Redis and the load generator is
# sampled from /proc, so the table says what limits each figure.
# Builds nothing: `make bench-intake` builds first.
#
# Environment (defaults in brackets): BENCH_DURATION [10s] (wrk -d), BENCH_THREADS [2],
# BENCH_CONNECTIONS [64], BENCH_BATCH_SIZE [100], BENCH_KCAT_EVENTS [200000],
# BENCH_INBOUND_EVENTS [100000], BENCH_INBOUND_TIMEOUT [30] seconds, BENCH_WRK_TIMEOUT [30s],
# BENCH_KAFKA_PORT [29092], BENCH_KAFKA_CONTROLLER_PORT [29093], BENCH_REDIS_PORT
# [26379], BENCH_INTAKE_PORT [28081], BENCH_RAW_PORT [28091], BENCH_LOG_LEVEL [info]
# (intake's DUBAN_LOG_LEVEL), BENCH_KEEP_VAR [unset: the var dir is removed at the end].
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:?usage: intake.sh BUILD_DIR}
[[ $BUILD == /* ]] || BUILD=$PWD/$BUILD
RAW_BIN=$BUILD/tests/bench/bench_http_raw
INTAKE_BIN=$BUILD/services/intake/duban-intake
STAGES_BIN=$BUILD/tests/bench/bench_stages

DURATION=${BENCH_DURATION:-10s}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-64}
BATCH_SIZE=${BENCH_BATCH_SIZE:-100}
KCAT_EVENTS=${BENCH_KCAT_EVENTS:-200000}
INBOUND_EVENTS=${BENCH_INBOUND_EVENTS:-100000}
INBOUND_TIMEOUT=${BENCH_INBOUND_TIMEOUT:-30}
# wrk's own default (2 s) would drop slow batches from the latency figures.
WRK_TIMEOUT=${BENCH_WRK_TIMEOUT:-30s}
KAFKA_PORT=${BENCH_KAFKA_PORT:-29092}
CONTROLLER_PORT=${BENCH_KAFKA_CONTROLLER_PORT:-29093}
REDIS_PORT=${BENCH_REDIS_PORT:-26379}
INTAKE_PORT=${BENCH_INTAKE_PORT:-28081}
RAW_PORT=${BENCH_RAW_PORT:-28091}
BROKER=127.0.0.1:$KAFKA_PORT
INTAKE=http://127.0.0.1:$INTAKE_PORT
TOKEN=dub_demo_hotline12345_6f1c9e2b47d84a03
# The settings of libs/kafka/producer.c, for the kcat baseline and the inbound load.
KCAT_PRODUCER=(-X enable.idempotence=true -X acks=all -X linger.ms=5
	-X socket.nagle.disable=true -X partitioner=murmur2_random)
SCRATCH_TOPIC=bench.intake.kcat

BENCH_NAME=intake.sh
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"

for bin in "$RAW_BIN" "$INTAKE_BIN" "$STAGES_BIN"; do
	[[ -x $bin ]] || die "'$bin' is missing; build first (make build)"
done
need wrk kcat curl java python3
ports_free "$KAFKA_PORT" "$CONTROLLER_PORT" "$REDIS_PORT" "$INTAKE_PORT" "$RAW_PORT"

VAR=$(mktemp -d /tmp/duban-bench-intake.XXXXXX)
LOG=$VAR/bench.log
RUN_ID=b$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')
raw_pid=
child_pid=
stack_started=

# The stack's environment: DESIGN.md's variables, on the benchmark's own ports.
unset DUBAN_KAFKA_BROKERS DUBAN_REDIS_URL DUBAN_SMS_URL DUBAN_SMTP_URL
export DUBAN_VAR_DIR=$VAR DUBAN_KAFKA_PORT=$KAFKA_PORT \
	DUBAN_KAFKA_CONTROLLER_PORT=$CONTROLLER_PORT DUBAN_REDIS_PORT=$REDIS_PORT \
	DUBAN_INTAKE_PORT=$INTAKE_PORT DUBAN_STACK_SERVICES=intake \
	DUBAN_BUILD_DIR=$BUILD DUBAN_OUTBOX_DIR=$VAR/outbox DUBAN_BIND=127.0.0.1 \
	DUBAN_CONFIG_DIR=$ROOT/deploy/config DUBAN_LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
DUBAN_PII_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export DUBAN_PII_KEY

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[[ -n $child_pid ]] && kill "$child_pid" 2>/dev/null
	[[ -n $raw_pid ]] && kill "$raw_pid" 2>/dev/null && wait "$raw_pid" 2>/dev/null
	if [[ -n $stack_started ]]; then
		# A stopped intake must be continued before it can stop.
		[[ -s $VAR/run/intake.pid ]] && kill -CONT "$(<"$VAR/run/intake.pid")" 2>/dev/null
		"$ROOT/deploy/local/stack.sh" down >>"$LOG" 2>&1 || say "stack.sh down failed; see $LOG"
	fi
	bench_finish "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- measuring -----------------------------------------------------------------------

# The long-lived processes sampled in every phase; set once the stack is up.
declare -A PIDS=()
declare -A T0=()
M0=
W0=
cpu_begin() {
	local name
	for name in "${!PIDS[@]}"; do
		T0[$name]=$(ticks "${PIDS[$name]}")
	done
	M0=$(machine_ticks)
	W0=$(now_us)
}
# cpu_end GEN_NAME GEN_TICKS: one line with each process's %CPU (100% = one core) since
# cpu_begin, the load generator's from GEN_TICKS, and what the rest of the machine used.
cpu_end() {
	local gen=$1 gen_ticks=$2 wall name t sum m1 line b0 t0 b1 t1
	wall=$(($(now_us) - W0))
	m1=$(machine_ticks)
	line=
	sum=$gen_ticks
	for name in intake kafka redis raw; do
		[[ -n ${PIDS[$name]:-} ]] || continue
		t=$(($(ticks "${PIDS[$name]}") - T0[$name]))
		sum=$((sum + t))
		line+=$(awk -v n="$name" -v t="$t" -v hz="$CLK_TCK" -v w="$wall" \
			'BEGIN { printf "%s %.0f%%, ", n, 100 * t / hz / (w / 1e6) }')
	done
	[[ -z $gen ]] || line+=$(awk -v n="$gen" -v t="$gen_ticks" -v hz="$CLK_TCK" -v w="$wall" \
		'BEGIN { printf "%s %.0f%%, ", n, 100 * t / hz / (w / 1e6) }')
	read -r b0 t0 <<<"$M0"
	read -r b1 t1 <<<"$m1"
	line+=$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) -v s="$sum" -v n="$NCPU" \
		-v hz="$CLK_TCK" -v w="$wall" 'BEGIN {
		busy = t > 0 ? 100 * n * b / t : 0
		other = busy - 100 * s / hz / (w / 1e6); if (other < 0) other = 0
		printf "other processes %.0f%%; machine %.0f%% of %d%%", other, busy, 100 * n }')
	printf '%s\n' "$line"
}

# measured OUT GEN_NAME CMD...: runs CMD with stdout and stderr in OUT, sampling its CPU
# every 0.2 s, between cpu_begin and cpu_end; the CPU line goes to OUT.cpu. Returns
# CMD's exit status.
measured() {
	local out=$1 gen=$2 pid gen_ticks=0 t rc=0
	shift 2
	cpu_begin
	"$@" >"$out" 2>&1 &
	pid=$!
	child_pid=$pid
	while kill -0 "$pid" 2>/dev/null; do
		t=$(ticks "$pid")
		((t > gen_ticks)) && gen_ticks=$t
		sleep 0.2
	done
	wait "$pid" || rc=$?
	child_pid=
	cpu_end "$gen" "$gen_ticks" >"$out.cpu"
	return "$rc"
}

# result FILE KEY: the value of KEY on the RESULT line a wrk script printed.
result() {
	sed -n 's/^RESULT .*\b'"$2"'=\([^ ]*\).*/\1/p' "$1" | tail -n 1
}

# Figures, by phase.
declare -A RATE=() P50=() P99=() CPU=() NOTE=()

# wrk_phase NAME URL SCRIPT: wrk -t/-c/-d with --latency and SCRIPT; sets the figures.
wrk_phase() {
	local name=$1 url=$2 script=$3 out=$VAR/$1.wrk
	say "$name: wrk -t$THREADS -c$CONNS -d$DURATION --latency $url"
	measured "$out" wrk wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout "$WRK_TIMEOUT" --latency \
		-s "$HERE/$script" "$url" || die "$name: wrk failed: $(tail -n 3 "$out")"
	cat "$out" >>"$LOG"
	local acc dur
	acc=$(result "$out" accepted)
	dur=$(result "$out" duration_us)
	[[ -n $acc && -n $dur ]] || die "$name: no RESULT line from wrk: $(tail -n 3 "$out")"
	RATE[$name]=$(awk -v a="$acc" -v d="$dur" 'BEGIN { printf "%.0f", (d > 0 ? a / (d / 1e6) : 0) }')
	P50[$name]=$(result "$out" p50_us)
	P99[$name]=$(result "$out" p99_us)
	CPU[$name]=$(<"$out.cpu")
	say "$name: $(grep '^RESULT' "$out")"
	say "$name: cpu: ${CPU[$name]}"
}

# --- the stack -----------------------------------------------------------------------

busy_before

TEMPLATE=$VAR/event.json
python3 "$HERE/intake_events.py" template >"$TEMPLATE"
say "event: $(($(wc -c <"$TEMPLATE") - 1 - 4 + 16)) bytes with a 16-byte id; var dir $VAR"

say "starting Kafka, Redis and intake (log $LOG)"
stack_started=1
"$ROOT/deploy/local/stack.sh" up >>"$LOG" 2>&1 || die "the stack did not come up"
PIDS[intake]=$(<"$VAR/run/intake.pid")
PIDS[kafka]=$(<"$VAR/kafka/kafka.pid")
PIDS[redis]=$(<"$VAR/redis/redis.pid")

"$RAW_BIN" "$RAW_PORT" >>"$LOG" 2>&1 &
raw_pid=$!
for ((i = 0; ; i++)); do
	curl -fsS -o /dev/null "http://127.0.0.1:$RAW_PORT/" 2>/dev/null && break
	((i < 100)) || die "bench_http_raw did not come up on port $RAW_PORT"
	sleep 0.05
done

# --- baselines -----------------------------------------------------------------------

PIDS[raw]=$raw_pid
wrk_phase hello "http://127.0.0.1:$RAW_PORT/" intake_hello.lua
unset 'PIDS[raw]'
kill "$raw_pid" 2>/dev/null && wait "$raw_pid" 2>/dev/null
raw_pid=

# The kcat baseline writes to a scratch topic shaped like duban.cases (same partitions),
# not to a Duban topic: records there would be read as case events (or, in
# duban.inbound, consumed by intake during the measurement).
CASES_PARTITIONS=$(partitions duban.cases)
[[ -n $CASES_PARTITIONS ]] || die "duban.cases is missing"
say "kcat: creating $SCRATCH_TOPIC ($CASES_PARTITIONS partitions)"
java -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
	-Dlog4j2.configurationFile="$ROOT/deploy/local/log4j2-tools.properties" \
	-cp "$ROOT/deploy/kafka/lib/*" org.apache.kafka.tools.TopicCommand \
	--bootstrap-server "$BROKER" --create --if-not-exists --topic "$SCRATCH_TOPIC" \
	--partitions "$CASES_PARTITIONS" --replication-factor 1 >>"$LOG" 2>&1 ||
	die "could not create $SCRATCH_TOPIC"
for ((i = 0; i < 100; i++)); do
	[[ $(partitions "$SCRATCH_TOPIC") == "$CASES_PARTITIONS" ]] && break
	sleep 0.1
done

python3 "$HERE/intake_events.py" kcat "$KCAT_EVENTS" "$RUN_ID-k" >"$VAR/kcat.txt"
# A short warm-up, so that the broker's JIT is as warm for kcat as for intake later.
head -n 20000 "$VAR/kcat.txt" | sed 's/^/w/' |
	kcat -P -q -b "$BROKER" -t "$SCRATCH_TOPIC" -K '\t' "${KCAT_PRODUCER[@]}" 2>>"$LOG" ||
	die "kcat warm-up failed"
before=$(end_offsets "$SCRATCH_TOPIC")
say "kcat: producing $KCAT_EVENTS events (acks=all, idempotence, linger.ms=5)"
t0=$(now_us)
measured "$VAR/kcat.out" kcat kcat -P -q -b "$BROKER" -t "$SCRATCH_TOPIC" -K '\t' \
	"${KCAT_PRODUCER[@]}" -l "$VAR/kcat.txt" || die "kcat failed: $(tail -n 3 "$VAR/kcat.out")"
t1=$(now_us)
written=$(($(end_offsets "$SCRATCH_TOPIC") - before))
((written == KCAT_EVENTS)) || say "kcat: $written of $KCAT_EVENTS records arrived"
RATE[kcat]=$(awk -v n="$written" -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (d / 1e6) }')
CPU[kcat]=$(<"$VAR/kcat.out.cpu")
say "kcat: $written records in $(((t1 - t0) / 1000)) ms: ${RATE[kcat]} msg/s"
say "kcat: cpu: ${CPU[kcat]}"
rm -f "$VAR/kcat.txt"

# --- single events -------------------------------------------------------------------

export BENCH_TEMPLATE=$TEMPLATE BENCH_TOKEN=$TOKEN
post() { # post CONTENT_TYPE BODY_FILE OUT: prints the HTTP status, the body goes to OUT
	: >"$3"
	curl -sS -o "$3" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
		-H "Content-Type: $1" --data-binary "@$2" "$INTAKE/v1/events" 2>>"$LOG" || true
}
sed "s/@ID@/$RUN_ID-probe/" "$TEMPLATE" >"$VAR/one.json"
code=$(post application/cloudevents+json "$VAR/one.json" "$VAR/one.out")
[[ $code == 202 ]] || die "intake answered a single event with $code: $(head -c 300 "$VAR/one.out")"

BENCH_RUN=$RUN_ID-s BENCH_BATCH=0 wrk_phase single "$INTAKE" intake_post.lua
NOTE[single]="answers $(result "$VAR/single.wrk" statuses); socket errors $(result "$VAR/single.wrk" socket_errors)"

# --- batches -------------------------------------------------------------------------

python3 "$HERE/intake_events.py" batch "$BATCH_SIZE" "$RUN_ID-probe-b" >"$VAR/batch.json"
code=$(post application/cloudevents-batch+json "$VAR/batch.json" "$VAR/batch.out")
read -r got acc < <(python3 "$HERE/intake_events.py" count-results <"$VAR/batch.out" |
	sed 's/[a-z]*=//g')
if [[ $code == 207 && $got == "$BATCH_SIZE" ]]; then
	say "batch: a sample of $BATCH_SIZE answered 207 with $acc of $got accepted"
	((acc == BATCH_SIZE)) || say "batch: sample reply: $(head -c 300 "$VAR/batch.out")"
	BENCH_RUN=$RUN_ID-b BENCH_BATCH=$BATCH_SIZE wrk_phase batch "$INTAKE" intake_post.lua
	answers=$(result "$VAR/batch.wrk" answers)
	acc=$(result "$VAR/batch.wrk" accepted)
	NOTE[batch]="sample accepted; $acc of $((answers * BATCH_SIZE)) posted events accepted; answers $(result "$VAR/batch.wrk" statuses); socket errors $(result "$VAR/batch.wrk" socket_errors)"
else
	say "batch: not available (a batch of $BATCH_SIZE answered $code: $(head -c 200 "$VAR/batch.out"))"
	NOTE[batch]="intake answered a batch with $code"
fi

# --- duban.inbound -------------------------------------------------------------------

# inbound_wait TARGET SECONDS: polls duban.cases until it holds TARGET records; true if
# it did in time.
inbound_wait() {
	local until=$(($(now_us) + $2 * 1000000))
	# Each poll is a kcat process (tens of ms of CPU): not too often, it competes with
	# intake (its CPU shows as "other processes").
	while (($(end_offsets duban.cases) < $1)); do
		(($(now_us) < until)) || return 1
		sleep 0.25
	done
}
produce_inbound() { # produce_inbound FILE
	kcat -P -q -b "$BROKER" -t duban.inbound -K '\t' \
		-H content-type=application/cloudevents+json "${KCAT_PRODUCER[@]}" -l "$1"
}
cases=$(end_offsets duban.cases)
dlq=$(end_offsets duban.dlq)
python3 "$HERE/intake_events.py" kcat 1 "$RUN_ID-probe-i" >"$VAR/probe.txt"
produce_inbound "$VAR/probe.txt" 2>>"$LOG" || die "kcat could not produce to duban.inbound"
if inbound_wait $((cases + 1)) 10; then
	say "inbound: a probe event reached duban.cases; loading $INBOUND_EVENTS events with intake stopped"
	python3 "$HERE/intake_events.py" kcat "$INBOUND_EVENTS" "$RUN_ID-i" >"$VAR/inbound.txt"
	cases=$(end_offsets duban.cases)
	kill -STOP "${PIDS[intake]}"
	t0=$(now_us)
	produce_inbound "$VAR/inbound.txt" 2>>"$LOG" || die "kcat could not produce to duban.inbound"
	t1=$(now_us)
	say "inbound: produced in $(((t1 - t0) / 1000)) ms; continuing intake"
	rm -f "$VAR/inbound.txt"
	cpu_begin
	t0=$(now_us)
	kill -CONT "${PIDS[intake]}"
	if inbound_wait $((cases + INBOUND_EVENTS)) "$INBOUND_TIMEOUT"; then
		t1=$(now_us)
		done_n=$INBOUND_EVENTS
		NOTE[inbound]="$INBOUND_EVENTS events drained from a backlog"
	else
		t1=$(now_us)
		done_n=$(($(end_offsets duban.cases) - cases))
		NOTE[inbound]="only $done_n of $INBOUND_EVENTS events in ${INBOUND_TIMEOUT}s"
	fi
	CPU[inbound]=$(cpu_end "" 0)
	RATE[inbound]=$(awk -v n="$done_n" -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (d / 1e6) }')
	say "inbound: $done_n case events in $(((t1 - t0) / 1000)) ms: ${RATE[inbound]} events/s"
	say "inbound: cpu: ${CPU[inbound]}"
else
	dlq_now=$(end_offsets duban.dlq)
	if ((dlq_now > dlq)); then
		NOTE[inbound]="the probe event went to duban.dlq"
	else
		NOTE[inbound]="a probe event did not reach duban.cases in 10 s"
	fi
	say "inbound: not available (${NOTE[inbound]})"
fi

# --- the stages: what one event costs in the libraries, on one thread ---------------

python3 "$HERE/intake_events.py" kcat 1 "$RUN_ID-stages" | cut -f2 >"$VAR/stage-event.json"
"$STAGES_BIN" "$VAR/stage-event.json" "$ROOT/schemas" 20000 >"$VAR/stages.txt" ||
	die "bench_stages failed"
STAGE_TOTAL_US=$(sed -n 's/^STAGE total us_per_event=\([0-9.]*\).*/\1/p' "$VAR/stages.txt")

# --- the table -----------------------------------------------------------------------

ms() { [[ -n ${1:-} ]] && awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }' || printf -- '-'; }
ratio() { # ratio A B
	[[ -n ${1:-} && -n ${2:-} ]] && awk -v a="$1" -v b="$2" \
		'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "-" }' || printf -- '-'
}
# row NAME LABEL UNIT TARGET_RATE TARGET_P99_US TARGET_TEXT
row() {
	local name=$1 label=$2 unit=$3 want=$4 want_p99=$5 text=$6 value verdict
	if [[ -z ${RATE[$name]:-} ]]; then
		printf '%-30s %-18s %-10s %-10s %-26s %-8s %-8s %s\n' "$label" "not available" - - \
			"$text" - - "-"
		return
	fi
	value="${RATE[$name]} $unit"
	verdict=-
	if [[ -n $want ]]; then
		verdict=met
		((RATE[$name] >= want)) || verdict="not met"
		if [[ -n $want_p99 ]] && ((P99[$name] > want_p99)); then verdict="not met"; fi
	fi
	printf '%-30s %-18s %-10s %-10s %-26s %-8s %-8s %s\n' "$label" "$value" \
		"$(ms "${P50[$name]:-}")" "$(ms "${P99[$name]:-}")" "$text" \
		"$(ratio "${RATE[$name]}" "${RATE[hello]:-}")" "$(ratio "${RATE[$name]}" "${RATE[kcat]:-}")" \
		"$verdict"
}

printf '\nintake benchmark: %s, wrk -t%s -c%s -d%s, %s-byte events, %s CPUs, %s\n' \
	"$(date -Is)" "$THREADS" "$CONNS" "$DURATION" \
	"$(($(wc -c <"$TEMPLATE") - 1 - 4 + 16))" "$NCPU" "$(uname -r)"
printf '%-30s %-18s %-10s %-10s %-26s %-8s %-8s %s\n' figure value p50 p99 target \
	"/hello" "/kcat" verdict
row hello "libmicrohttpd hello world" "req/s" "" "" "(baseline)"
row kcat "kcat producer, acks=all" "msg/s" "" "" "(baseline)"
row single "single events" "events/s" 20000 25000 ">= 20000/s, p99 <= 25 ms"
row batch "batches of $BATCH_SIZE (latency/batch)" "events/s" 100000 "" ">= 100000/s"
row inbound "duban.inbound -> duban.cases" "events/s" 50000 "" ">= 50000/s"
printf '\nlatency ratios to the hello world: single p50 %s, p99 %s\n' \
	"$(ratio "${P50[single]:-}" "${P50[hello]:-}")" "$(ratio "${P99[single]:-}" "${P99[hello]:-}")"
printf '\nCPU one event costs in the library stages intake runs (bench_stages, one thread):\n'
sed -n 's/^STAGE \([a-z_]*\) us_per_event=\([0-9.]*\) events_per_core_s=\([0-9]*\).*/  \1 \2 \3/p' \
	"$VAR/stages.txt" | while read -r stage us rate; do
	printf '  %-18s %8s us/event  %8s events/s per core\n' "$stage" "$us" "$rate"
done
printf '  ceiling: all %s CPUs doing nothing but these stages: %s events/s\n' "$NCPU" \
	"$(awk -v n="$NCPU" -v t="$STAGE_TOTAL_US" 'BEGIN { printf "%.0f", n * 1e6 / t }')"
printf '\nCPU during each phase (100%% = one core):\n'
for name in hello kcat single batch inbound; do
	[[ -n ${CPU[$name]:-} ]] && printf '  %-8s %s\n' "$name" "${CPU[$name]}"
done
for name in hello kcat single batch inbound; do
	other=$(sed -n 's/.*other processes \([0-9]*\)%.*/\1/p' <<<"${CPU[$name]:-}")
	if [[ -n $other ]] && ((other > 20)); then
		NOTE[busy]+="$name (${other}%) "
	fi
done
[[ -z ${NOTE[busy]:-} ]] || NOTE[busy]="other processes used the CPU during: ${NOTE[busy]}- not clean figures"
((BUSY_BEFORE < 20)) || NOTE[busy]="machine ${BUSY_BEFORE}% busy before the start; ${NOTE[busy]:-}"
printf '\nnotes:\n'
for name in single batch inbound busy; do
	[[ -n ${NOTE[$name]:-} ]] && printf '  %-8s %s\n' "$name" "${NOTE[$name]}"
done
exit 0
