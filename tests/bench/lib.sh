# shellcheck shell=bash
# lib.sh - what the benchmark scripts share: messages, free ports, the clock, CPU ticks
# from /proc, Kafka topic sizes, and the end of a run. Sourced, never run.
#
# The sourcing script sets BENCH_NAME (for messages) first; before the Kafka helpers it
# sets BROKER (host:port) and LOG (where kcat's stderr goes); before bench_finish, VAR
# (the run's directory, removed unless BENCH_KEEP_VAR or KEEP_VAR is set).

say() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }
die() {
	say "$*"
	exit 1
}

# port_busy PORT: true when something listens on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ports_free PORT...: dies naming the first one taken.
ports_free() {
	local p
	for p in "$@"; do
		port_busy "$p" && die "port 127.0.0.1:$p is taken; set the BENCH_*_PORT variables"
	done
	return 0
}

# need TOOL...: dies naming the first one missing.
need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || die "$tool is not installed"
	done
}

CLK_TCK=$(getconf CLK_TCK)
NCPU=$(getconf _NPROCESSORS_ONLN)
now_us() { printf '%s' "${EPOCHREALTIME/[.,]/}"; }

# ticks PID...: user+system clock ticks the processes have used (0 for one that is gone).
ticks() {
	local sum=0 stat f pid
	for pid in "$@"; do
		stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		read -r -a f <<<"${stat##*) }"
		sum=$((sum + f[11] + f[12]))
	done
	echo "$sum"
}

# pct TICKS MICROSECONDS: %CPU (100% = one core).
pct() { awk -v t="$1" -v hz="$CLK_TCK" -v w="$2" 'BEGIN { printf "%.0f%%", 100 * t / hz / (w / 1e6) }'; }

# machine_ticks: busy and total clock ticks of all CPUs since boot, "BUSY TOTAL".
machine_ticks() {
	local user nice system idle iowait irq softirq steal rest
	read -r _ user nice system idle iowait irq softirq steal rest </proc/stat
	echo "$((user + nice + system + irq + softirq + steal)) \
$((user + nice + system + idle + iowait + irq + softirq + steal))"
}

# busy_before: the figures mean something only on an otherwise idle machine. Sets
# BUSY_BEFORE to the %CPU (100% = one core) the machine used over one second, and warns
# when that is 20% or more; the caller repeats the warning beside its figures.
busy_before() {
	local b0 t0 b1 t1
	read -r b0 t0 <<<"$(machine_ticks)"
	sleep 1
	read -r b1 t1 <<<"$(machine_ticks)"
	BUSY_BEFORE=$((t1 > t0 ? 100 * NCPU * (b1 - b0) / (t1 - t0) : 0))
	((BUSY_BEFORE < 20)) ||
		say "warning: the machine is already busy (${BUSY_BEFORE}% of $((100 * NCPU))% before starting); figures will be low"
}

# partitions TOPIC: how many partitions the topic has.
partitions() {
	kcat -L -b "$BROKER" -t "$1" -m 5 2>>"$LOG" |
		sed -n 's/.* with \([0-9]*\) partitions.*/\1/p' | head -n 1
}

# end_offsets TOPIC: the sum of the topic's partitions' end offsets (its record count
# for a topic written without transactions and never compacted or deleted).
end_offsets() {
	local n args=() p
	n=$(partitions "$1")
	for ((p = 0; p < n; p++)); do
		args+=(-t "$1:$p:-1")
	done
	kcat -Q -b "$BROKER" "${args[@]}" 2>>"$LOG" |
		awk '/offset/ { s += $NF } END { print s + 0 }'
}

# bench_finish RC: the common end of a run, from the caller's EXIT trap after it stopped
# what it started: on failure the log's last lines, then the var dir removed or kept.
bench_finish() {
	local rc=$1
	if ((rc != 0)); then
		say "failed (exit $rc); last lines of $LOG:"
		tail -n 20 "$LOG" >&2 || true
	fi
	if [[ -n ${BENCH_KEEP_VAR:-}${KEEP_VAR:-} ]]; then
		say "kept $VAR"
	else
		rm -rf "$VAR"
	fi
	exit "$rc"
}
