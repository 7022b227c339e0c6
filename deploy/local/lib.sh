# shellcheck shell=bash disable=SC2034 # the variables below are used by the sourcing scripts
# Shared helpers for the local stack scripts: paths, messages, pid files, waiting.
# Sourced, never run. Everything binds to 127.0.0.1; processes are tracked by pid file
# and stopped by that pid only.

DUBAN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROG=$(basename "$0" .sh)

# DUBAN_VAR_DIR [var] holds data, logs and pid files; relative paths are from the repo root.
VAR_DIR=${DUBAN_VAR_DIR:-var}
case $VAR_DIR in
/*) ;;
*) VAR_DIR=$DUBAN_ROOT/$VAR_DIR ;;
esac
KAFKA_LIB=$DUBAN_ROOT/deploy/kafka/lib
KAFKA_PORT=${DUBAN_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${DUBAN_KAFKA_CONTROLLER_PORT:-9093}
REDIS_PORT=${DUBAN_REDIS_PORT:-6379}

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
	warn "$*"
	exit 1
}

# now: microseconds since the epoch (bash 5 EPOCHREALTIME).
now() { printf '%s' "${EPOCHREALTIME/[.,]/}"; }
# elapsed START: seconds since START (from now), one decimal.
elapsed() {
	local d=$(($(now) - $1))
	printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}
# deadline SECONDS: the now value SECONDS from now; past DEADLINE: true once reached.
deadline() { printf '%s' $(($(now) + $1 * 1000000)); }
past() { (($(now) >= $1)); }

# alive PID: true if PID is a live process (a zombie left to its parent counts as gone).
alive() {
	local stat
	kill -0 "$1" 2>/dev/null || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# pid_of PIDFILE: prints the pid if the file names a live process, else fails.
pid_of() {
	local pid
	[[ -s $1 ]] || return 1
	read -r pid <"$1" || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	alive "$pid" || return 1
	printf '%s\n' "$pid"
}

# port_busy PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# spawn PIDFILE LOGFILE CMD...: runs CMD detached in its own session (so Ctrl-C in the
# caller's terminal reaches only the caller), output appended to LOGFILE, and writes the
# pid of CMD itself to PIDFILE.
spawn() {
	local pidfile=$1 logfile=$2 i
	shift 2
	rm -f "$pidfile"
	# shellcheck disable=SC2016 # $$ and $0 are for the inner shell
	setsid sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" \
		</dev/null >>"$logfile" 2>&1 &
	for ((i = 0; i < 200; i++)); do
		[[ -s $pidfile ]] && return 0
		sleep 0.02
	done
	die "could not start '$1': no pid file $pidfile"
}

# stop_pid NAME PIDFILE TIMEOUT: TERM, wait up to TIMEOUT seconds, then KILL.
stop_pid() {
	local name=$1 pidfile=$2 timeout=$3 pid start until
	if ! pid=$(pid_of "$pidfile"); then
		rm -f "$pidfile"
		say "$name not running"
		return 0
	fi
	start=$(now)
	until=$(deadline "$timeout")
	kill -TERM "$pid" 2>/dev/null || true
	while alive "$pid"; do
		if past "$until"; then
			warn "$name (pid $pid) still running after ${timeout}s, sending KILL"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.2
			break
		fi
		sleep 0.1
	done
	rm -f "$pidfile"
	say "$name stopped (pid $pid, $(elapsed "$start")s)"
}

# tail_log FILE [LINES]: prints the end of a log to stderr, indented.
tail_log() {
	[[ -f $1 ]] || return 0
	warn "last lines of $1:"
	tail -n "${2:-30}" "$1" | sed 's/^/    /' >&2
}
