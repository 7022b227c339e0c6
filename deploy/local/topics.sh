#!/usr/bin/env bash
# Creates Duban's four topics on the local broker; a topic that exists already is fine.
# Partition counts come from the environment:
#   DUBAN_PARTITIONS_INBOUND [6], DUBAN_PARTITIONS_CASES [12],
#   DUBAN_PARTITIONS_NOTIFICATIONS [6], DUBAN_PARTITIONS_DLQ [3]
# Broker: 127.0.0.1:$DUBAN_KAFKA_PORT [9092]. Uses kcat to see what exists and
# org.apache.kafka.tools.TopicCommand (kafka-tools jar) to create what is missing.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BOOTSTRAP=127.0.0.1:$KAFKA_PORT
declare -A WANT=(
	[duban.inbound]=${DUBAN_PARTITIONS_INBOUND:-6}
	[duban.cases]=${DUBAN_PARTITIONS_CASES:-12}
	[duban.notifications]=${DUBAN_PARTITIONS_NOTIFICATIONS:-6}
	[duban.dlq]=${DUBAN_PARTITIONS_DLQ:-3}
)
ORDER=(duban.inbound duban.cases duban.notifications duban.dlq)

# partitions TOPIC: prints the topic's partition count, or 0 if it does not exist.
partitions() {
	local out
	out=$(kcat -L -b "$BOOTSTRAP" -t "$1" -m 5 2>/dev/null) ||
		die "cannot read metadata from $BOOTSTRAP (is Kafka up? deploy/local/kafka.sh start)"
	if [[ $out =~ topic\ \"$1\"\ with\ ([0-9]+)\ partitions: ]]; then
		printf '%s\n' "${BASH_REMATCH[1]}"
	else
		printf '0\n'
	fi
}

start=$(now)
shopt -s nullglob
tools=("$KAFKA_LIB"/kafka-tools-*.jar)
((${#tools[@]} > 0)) || die "no kafka-tools jar in $KAFKA_LIB: run deploy/local/setup.sh"

missing=()
for topic in "${ORDER[@]}"; do
	want=${WANT[$topic]}
	[[ $want =~ ^[1-9][0-9]*$ ]] || die "partition count for $topic must be a positive integer, not '$want'"
	have=$(partitions "$topic")
	if ((have == 0)); then
		missing+=("$topic")
	elif ((have == want)); then
		say "$topic exists ($have partitions)"
	else
		warn "$topic exists with $have partitions, not $want; left as it is"
	fi
done

# One short JVM per missing topic (about a second each; run side by side they only
# contend for the cores).
failed=0
for topic in "${missing[@]}"; do
	if java -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
		-Dlog4j2.configurationFile="$DUBAN_ROOT/deploy/local/log4j2-tools.properties" \
		-cp "$KAFKA_LIB/*" org.apache.kafka.tools.TopicCommand \
		--bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$topic" \
		--partitions "${WANT[$topic]}" --replication-factor 1 >/dev/null; then
		say "$topic created (${WANT[$topic]} partitions)"
	else
		warn "creating $topic failed"
		failed=1
	fi
done
((failed == 0)) || die "some topics could not be created"

# Wait until the broker's metadata shows every created topic, so that what starts next
# finds them.
until=$(deadline "${DUBAN_TOPICS_TIMEOUT:-30}")
for topic in "${missing[@]}"; do
	until (($(partitions "$topic") == WANT[$topic])); do
		past "$until" && die "$topic created but not in the broker's metadata"
		sleep 0.1
	done
done
say "topics ready ($(elapsed "$start")s)"
