#!/usr/bin/env bash
# Builds the four Duban services for the container image and installs them, stripped,
# into DEST/usr/local/bin. The Dockerfile's build stage runs it; tests/deploy runs it too,
# on the files that stage copies, so the image build is checked without a Docker engine.
#   build.sh SRC BUILD_DIR DEST
# Release build (-O2 with assertions off, as RelWithDebInfo but without debug info), no
# tests, no benchmarks.
set -euo pipefail

SRC=${1:?usage: build.sh SRC BUILD_DIR DEST}
BUILD=${2:?usage: build.sh SRC BUILD_DIR DEST}
DEST=${3:?usage: build.sh SRC BUILD_DIR DEST}
SERVICES=(intake assignment deadline notification)

cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
	-DCMAKE_C_FLAGS_RELEASE='-O2 -DNDEBUG' -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" --target "${SERVICES[@]/#/duban-}"
for svc in "${SERVICES[@]}"; do
	install -D -s -m 0755 "$BUILD/services/$svc/duban-$svc" "$DEST/usr/local/bin/duban-$svc"
done
