#!/usr/bin/env bash
# lanes.sh BUILD_DIR LOG SHARED... -- OWN...
# Runs one build's system modules in two lanes at once: SHARED on the shared stack, and
# beside them OWN (modules that bring up stacks of their own) on ports moved by 1000
# more, their output kept in LOG and printed after. Fails if either lane fails.
set -uo pipefail
build=$1 log=$2
shift 2
shared=() own=()
while (($#)) && [[ $1 != -- ]]; do shared+=("$1"); shift; done
(($#)) && shift
own=("$@")
python=${PYTHON:-/usr/bin/python3}
moved=$((${DUBAN_TEST_PORT_SHIFT:-0} + 1000))
echo "system tests ($build): ${#shared[@]} modules on the shared stack; ${#own[@]} on stacks" \
	"of their own beside them (ports +$moved, output in $log, shown after)"
: >"$log"
lane=
if ((${#own[@]})); then
	DUBAN_TEST_PORT_SHIFT=$moved DUBAN_BUILD_DIR=$build "$python" -m pytest -q "${own[@]}" \
		>"$log" 2>&1 &
	lane=$!
fi
rc_shared=0 rc_own=0
if ((${#shared[@]})); then
	DUBAN_BUILD_DIR=$build "$python" -m pytest -q "${shared[@]}" || rc_shared=$?
fi
if [[ -n $lane ]]; then
	wait "$lane" || rc_own=$?
	echo "--- the modules on stacks of their own ($build):"
	cat "$log"
fi
((rc_shared == 0 && rc_own == 0))
