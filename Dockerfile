# syntax=docker/dockerfile:1
# One image for the four Duban services; the container's command selects the service:
#   duban-intake | duban-assignment | duban-deadline | duban-notification
# Why one image: the four share every library and the schemas, so one build and one tag
# serve all four, and a release is one artefact to scan and sign. A single service can
# still be rolled forward alone by giving only its container the new tag
# (docs/operations.md, "Upgrading one service at a time").
#   docker build -t duban:latest .

# ---- build: the toolchain and -dev packages of Debian bookworm ----
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      librdkafka-dev libmicrohttpd-dev libhiredis-dev libjansson-dev \
      libcurl4-openssl-dev libssl-dev libcmocka-dev libpcre2-dev libjemalloc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY libs libs
COPY services services
COPY deploy/docker/build.sh deploy/docker/build.sh
RUN deploy/docker/build.sh /src /build /out

# ---- runtime: bookworm-slim with the shared libraries the binaries need, and curl for
# the health check (tests/deploy checks this list against the binaries' NEEDED entries) ----
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      librdkafka1 libmicrohttpd12 libhiredis0.14 libjansson4 libssl3 libpcre2-8-0 libcurl4 \
      libjemalloc2 \
      curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin duban \
 && mkdir -p /etc/duban /var/lib/duban/outbox \
 && chown -R 10001:10001 /var/lib/duban
COPY --from=build /out/usr/local/bin/ /usr/local/bin/
COPY deploy/docker/duban-healthcheck /usr/local/bin/duban-healthcheck
COPY schemas /usr/share/duban/schemas
# The configuration (directory, rules, SLA, clients, calendars, templates) is mounted at
# /etc/duban; none is baked in, so the demo tokens never ship in an image.
ENV DUBAN_CONFIG_DIR=/etc/duban \
    DUBAN_SCHEMA_DIR=/usr/share/duban/schemas \
    DUBAN_OUTBOX_DIR=/var/lib/duban/outbox \
    DUBAN_BIND=0.0.0.0
WORKDIR /var/lib/duban
USER 10001:10001
EXPOSE 8081 8082 8083 8084
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["duban-healthcheck", "/healthz"]
LABEL org.opencontainers.image.title="duban" \
      org.opencontainers.image.description="Duban services: intake, assignment, deadline, notification" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
