#!/usr/bin/env bash
# The whole local stack: Kafka, Redis, the topics and the four Duban services.
#   stack.sh up       start everything, wait until every /readyz answers 200, print endpoints
#   stack.sh down     stop the services (TERM, up to 12 s, then KILL), Redis, then Kafka
#   stack.sh run      up, then stay in the foreground; Ctrl-C or TERM runs down
#   stack.sh status   what runs, and each service's /readyz status
# Environment (defaults in brackets): DUBAN_VAR_DIR [var], DUBAN_BUILD_DIR [build],
# DUBAN_STACK_SERVICES [intake assignment deadline notification] (empty: Kafka, Redis
# and topics only), DUBAN_READY_TIMEOUT [60] seconds, DUBAN_KEEP_ON_FAILURE [unset: a
# failed up stops what it started], and the service environment of DESIGN.md:
# DUBAN_KAFKA_BROKERS, DUBAN_REDIS_URL, DUBAN_CONFIG_DIR, DUBAN_PII_KEY (unset: a dev
# key kept in $DUBAN_VAR_DIR/dev-pii.key), DUBAN_SMS_URL, DUBAN_SMTP_URL, DUBAN_SMTP_FROM,
# DUBAN_OUTBOX_DIR, DUBAN_<SERVICE>_PORT [8081-8084], DUBAN_LOG_LEVEL; also
# DUBAN_SCHEMA_DIR [schemas] and DUBAN_BIND [127.0.0.1 here; the services' own default
# is 0.0.0.0].
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HERE=$DUBAN_ROOT/deploy/local
BUILD_DIR=${DUBAN_BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$DUBAN_ROOT/$BUILD_DIR
read -r -a SERVICES <<<"${DUBAN_STACK_SERVICES-intake assignment deadline notification}"
READY_TIMEOUT=${DUBAN_READY_TIMEOUT:-60}
RUN_DIR=$VAR_DIR/run
# What the running 'up' started, for up_or_down to stop on failure.
STARTED=$RUN_DIR/up.started
LOG_DIR=$VAR_DIR/log

# port SERVICE: the service's port from DUBAN_<SERVICE>_PORT or its default.
port() {
	local var
	var=DUBAN_${1^^}_PORT
	case $1 in
	intake) printf '%s\n' "${!var:-8081}" ;;
	assignment) printf '%s\n' "${!var:-8082}" ;;
	deadline) printf '%s\n' "${!var:-8083}" ;;
	notification) printf '%s\n' "${!var:-8084}" ;;
	*) die "unknown service '$1'" ;;
	esac
}

# The environment every service gets (DESIGN.md "Environment for the stack").
service_env() {
	local svc
	export DUBAN_KAFKA_BROKERS=${DUBAN_KAFKA_BROKERS:-127.0.0.1:$KAFKA_PORT}
	export DUBAN_REDIS_URL=${DUBAN_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}
	export DUBAN_CONFIG_DIR=${DUBAN_CONFIG_DIR:-$DUBAN_ROOT/deploy/config}
	export DUBAN_OUTBOX_DIR=${DUBAN_OUTBOX_DIR:-$VAR_DIR/outbox}
	export DUBAN_LOG_LEVEL=${DUBAN_LOG_LEVEL:-info}
	export DUBAN_SCHEMA_DIR=${DUBAN_SCHEMA_DIR:-$DUBAN_ROOT/schemas}
	export DUBAN_BIND=${DUBAN_BIND:-127.0.0.1}
	for svc in intake assignment deadline notification; do
		export "DUBAN_${svc^^}_PORT=$(port "$svc")"
	done
	if [[ -z ${DUBAN_PII_KEY:-} ]]; then
		if [[ ! -s $VAR_DIR/dev-pii.key ]]; then
			(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$VAR_DIR/dev-pii.key")
			say "generated a development PII key in $VAR_DIR/dev-pii.key"
		fi
		DUBAN_PII_KEY=$(<"$VAR_DIR/dev-pii.key")
	fi
	export DUBAN_PII_KEY
	mkdir -p "$DUBAN_OUTBOX_DIR"
}

# tail_service_log SERVICE: the end of the service's log since its last start.
tail_service_log() {
	local log=$LOG_DIR/$1.log
	[[ -f $log ]] || return 0
	warn "last lines of $log:"
	awk -v m="=== $1 start " 'index($0, m) == 1 { n = 0; next } { buf[n++] = $0 }
		END { for (i = (n > 40 ? n - 40 : 0); i < n; i++) print "    " buf[i] }' "$log" >&2
}

# readyz SERVICE: prints the HTTP status of the service's /readyz (000 if no answer).
readyz() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
		"http://127.0.0.1:$(port "$1")/readyz" 2>/dev/null || true
}

start_services() {
	local svc bin pid p
	for svc in "${SERVICES[@]}"; do
		bin=$BUILD_DIR/services/$svc/duban-$svc
		[[ -x $bin ]] || die "$bin not found: build first (make build)"
	done
	for svc in "${SERVICES[@]}"; do
		if pid=$(pid_of "$RUN_DIR/$svc.pid"); then
			say "$svc already running (pid $pid, /readyz $(readyz "$svc"))"
			continue
		fi
		p=$(port "$svc")
		port_busy "$p" && die "port 127.0.0.1:$p for $svc is taken by another process"
		printf '\n=== %s start %s ===\n' "$svc" "$(date -Is)" >>"$LOG_DIR/$svc.log"
		(cd "$DUBAN_ROOT" && spawn "$RUN_DIR/$svc.pid" "$LOG_DIR/$svc.log" \
			"$BUILD_DIR/services/$svc/duban-$svc")
		echo "$svc" >>"$STARTED"
		say "$svc started (pid $(<"$RUN_DIR/$svc.pid"), port $p, log $LOG_DIR/$svc.log)"
	done
}

# wait_ready: waits for the services this up started. One that was already running is
# not waited for: it may be rebuilding its Redis state from Kafka, and the caller asked
# for the others (stack.sh status shows its /readyz).
wait_ready() {
	local svc code pid start until started=()
	start=$(now)
	until=$(deadline "$READY_TIMEOUT")
	mapfile -t started < <(grep -vxE 'kafka|redis' "$STARTED" || true)
	for svc in "${started[@]}"; do
		while [[ $(readyz "$svc") != 200 ]]; do
			if ! pid=$(pid_of "$RUN_DIR/$svc.pid"); then
				tail_service_log "$svc"
				warn "$svc exited before it was ready"
				return 1
			fi
			if past "$until"; then
				code=$(readyz "$svc")
				tail_service_log "$svc"
				warn "$svc not ready after ${READY_TIMEOUT}s (/readyz answers $code)"
				return 1
			fi
			sleep 0.1
		done
	done
	((${#started[@]} == 0)) || say "${started[*]} ready ($(elapsed "$start")s)"
}

endpoints() {
	local svc
	printf '\nDuban local stack is up.\n'
	printf '  %-14s %s\n' kafka "127.0.0.1:$KAFKA_PORT  (topics: kcat -L -b 127.0.0.1:$KAFKA_PORT)"
	printf '  %-14s %s\n' redis "redis://127.0.0.1:$REDIS_PORT/0"
	for svc in "${SERVICES[@]}"; do
		printf '  %-14s %s\n' "$svc" "http://127.0.0.1:$(port "$svc")  (/healthz /readyz /metrics /v1/...)"
	done
	printf '  %-14s %s\n' outbox "$DUBAN_OUTBOX_DIR"
	printf '  %-14s %s\n' logs "$LOG_DIR/<service>.log, $VAR_DIR/kafka/logs, $VAR_DIR/redis"
	printf 'Demo tokens: deploy/config/README.md. Stop with: make down (or deploy/local/stack.sh down)\n'
}

up() {
	local start
	start=$(now)
	mkdir -p "$VAR_DIR" "$RUN_DIR" "$LOG_DIR"
	: >"$STARTED"
	"$HERE/kafka.sh" status >/dev/null 2>&1 || echo kafka >>"$STARTED"
	"$HERE/kafka.sh" start
	"$HERE/redis.sh" status >/dev/null 2>&1 || echo redis >>"$STARTED"
	"$HERE/redis.sh" start
	"$HERE/topics.sh"
	service_env
	start_services
	wait_ready
	say "up in $(elapsed "$start")s"
	endpoints
}

# stop_services [SERVICE...]: stops those services (default: every service with a pid
# file, whatever DUBAN_STACK_SERVICES says).
stop_services() {
	local svc pid pids=() start until
	(($#)) || set -- intake assignment deadline notification
	for svc in "$@"; do
		pid=$(pid_of "$RUN_DIR/$svc.pid") || continue
		kill -TERM "$pid" 2>/dev/null || true
		pids+=("$svc:$pid")
	done
	start=$(now)
	until=$(deadline "${DUBAN_STOP_TIMEOUT:-12}")
	for entry in "${pids[@]}"; do
		svc=${entry%%:*}
		pid=${entry#*:}
		while alive "$pid" && ! past "$until"; do
			sleep 0.1
		done
		if alive "$pid"; then
			warn "$svc (pid $pid) still running after ${DUBAN_STOP_TIMEOUT:-12}s, sending KILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f "$RUN_DIR/$svc.pid"
		say "$svc stopped (pid $pid, $(elapsed "$start")s)"
	done
}

down() {
	stop_services
	"$HERE/redis.sh" stop
	"$HERE/kafka.sh" stop
}

status() {
	local svc pid rc=0
	"$HERE/kafka.sh" status || rc=1
	"$HERE/redis.sh" status || rc=1
	for svc in "${SERVICES[@]}"; do
		if pid=$(pid_of "$RUN_DIR/$svc.pid"); then
			say "$svc running (pid $pid), /readyz $(readyz "$svc")"
		else
			say "$svc not running"
			rc=1
		fi
	done
	return "$rc"
}

# up_or_down: up (in a child, so that set -e holds inside it); if that fails, stop what
# this up started (listed in $STARTED), not what was running before it, unless
# DUBAN_KEEP_ON_FAILURE is set.
up_or_down() {
	local started=() svcs=() part
	"$HERE/stack.sh" _up && return 0
	if [[ -n ${DUBAN_KEEP_ON_FAILURE:-} ]]; then
		warn "up failed; left running for inspection (stack.sh down stops it)"
		return 1
	fi
	[[ -f $STARTED ]] && mapfile -t started <"$STARTED"
	warn "up failed; stopping what it started: ${started[*]:-nothing}"
	for part in "${started[@]}"; do
		[[ $part == kafka || $part == redis ]] || svcs+=("$part")
	done
	((${#svcs[@]} == 0)) || stop_services "${svcs[@]}" >&2 || true
	for part in redis kafka; do
		if [[ " ${started[*]} " == *" $part "* ]]; then
			"$HERE/$part.sh" stop >&2 || true
		fi
	done
	return 1
}

run() {
	local svc pid
	local -A reported=()
	trap 'trap - INT TERM; printf "\n"; say "stopping"; down; exit 0' INT TERM
	up_or_down || exit 1
	say "running; Ctrl-C stops the stack"
	while true; do
		for svc in "${SERVICES[@]}"; do
			if ! pid_of "$RUN_DIR/$svc.pid" >/dev/null && [[ -z ${reported[$svc]:-} ]]; then
				warn "$svc has exited; see $LOG_DIR/$svc.log"
				reported[$svc]=1
			fi
		done
		sleep 1 &
		wait $! || true
	done
}

case ${1:-} in
_up) up ;;
up) up_or_down ;;
down) down ;;
run) run ;;
status) status ;;
*) die "usage: stack.sh up|down|run|status" ;;
esac
