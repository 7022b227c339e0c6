#!/usr/bin/env bash
# Installs what the build, the tests and the local stack need, and nothing that is
# already there: missing Debian packages (apt, as root or through sudo), then the Kafka
# jars from Maven Central. Quick when nothing is missing; safe to run again.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(
	# C toolchain and the libraries the services link against
	build-essential cmake ninja-build pkg-config
	librdkafka-dev libmicrohttpd-dev libhiredis-dev libjansson-dev
	libcurl4-openssl-dev libssl-dev libcmocka-dev libpcre2-dev libjemalloc-dev
	# local stack
	redis-server redis-tools kcat openjdk-17-jre-headless maven curl ca-certificates
	# notification system tests: a real SMS gateway (bearerbox, smsbox, fakesmsc)
	kannel kannel-extras
	# tests and benchmarks
	json-schema-test-suite wrk hyperfine python3-aiosmtpd cppcheck shellcheck clang-format
	python3-jsonschema python3-pytest python3-requests
	# deployment checks (make deploy-check): the compose file, the proxy's
	# configuration, YAML style, the image's binaries
	docker-compose haproxy yamllint python3-yaml file
)

# mvn_quiet ARGS...: runs Maven in batch mode; shows its output only if it fails.
mvn_quiet() {
	local out
	if ! out=$(mvn -q -B "$@" 2>&1); then
		printf '%s\n' "$out" >&2
		die "maven failed: mvn $*"
	fi
}

start=$(now)

# One dpkg-query for all: a package is present if its status is "install ok installed".
declare -A installed=()
while read -r pkg status; do
	[[ $status == "install ok installed" ]] && installed[${pkg%%:*}]=1
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
missing=()
for pkg in "${PACKAGES[@]}"; do
	[[ -n ${installed[$pkg]:-} ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
	say "packages: all ${#PACKAGES[@]} installed"
else
	say "packages: installing ${missing[*]}"
	if ((EUID == 0)); then
		as_root=()
	elif command -v sudo >/dev/null; then
		as_root=(sudo -n)
	else
		die "not root and no sudo: install as root: apt-get install ${missing[*]}"
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${as_root[@]}" apt-get update -q >/dev/null
	"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
	say "packages: installed ${#missing[@]}"
fi

# The broker, its admin tools (TopicCommand) and a logging binding, per
# deploy/kafka/pom.xml.
shopt -s nullglob
jars=("$KAFKA_LIB"/kafka_2.13-*.jar)
tools=("$KAFKA_LIB"/kafka-tools-*.jar)
if ((${#jars[@]} == 0 || ${#tools[@]} == 0)); then
	say "kafka: fetching jars with maven into deploy/kafka/lib"
	mvn_quiet -f "$DUBAN_ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies
	jars=("$KAFKA_LIB"/kafka_2.13-*.jar)
	tools=("$KAFKA_LIB"/kafka-tools-*.jar)
	((${#jars[@]} > 0 && ${#tools[@]} > 0)) ||
		die "kafka: maven ran but kafka_2.13 or kafka-tools is missing in $KAFKA_LIB"
else
	say "kafka: jars present (${jars[0]##*/}, ${tools[0]##*/})"
fi

# make deploy-check renders deploy/k8s with `kubectl kustomize`. Debian bookworm has no
# kubectl recent enough (kubernetes-client 1.20 predates the kustomize these overlays
# use); without one, the standalone kustomize is built from its Go module.
if command -v kubectl >/dev/null || command -v kustomize >/dev/null; then
	say "kustomize: $(command -v kubectl || command -v kustomize)"
elif command -v go >/dev/null; then
	say "kustomize: no kubectl; installing sigs.k8s.io/kustomize/kustomize/v5 with go"
	GOBIN=/usr/local/bin go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0 ||
		die "kustomize: go install failed"
else
	die "kustomize: neither kubectl nor go is installed; install kubectl (1.27 or later)"
fi

say "done in $(elapsed "$start")s"
