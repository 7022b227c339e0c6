# Duban: build, test and run the local stack. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON := /usr/bin/python3
BUILD := build
BUILD_ASAN := build-asan
BUILD_TSAN := build-tsan
STACK := deploy/local/stack.sh
# Unit test binaries run side by side: most of their time is spent waiting on
# librdkafka's mock cluster (a group's first join alone takes 3 s).
CTEST := ctest --output-on-failure -L unit -j4
# Sanitizer runtime options for every run of the ASan+UBSan build (unit and system):
# stack use after return catches a callback writing into a frame that has returned.
ASAN_ENV := ASAN_OPTIONS=detect_stack_use_after_return=1:detect_leaks=1 \
	UBSAN_OPTIONS=print_stacktrace=1
# ThreadSanitizer (its own build: ASan and TSan cannot share a process). Unit tests stop
# at the first report; services keep running and the system harness fails the run on
# any report in their logs. Suppressions, and how TSan starts on this kernel:
# tests/tsan.supp.
TSAN_SUPP := suppressions=$(CURDIR)/tests/tsan.supp
TSAN_ENV_UNIT := TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 $(TSAN_SUPP)"
TSAN_ENV_SYSTEM := TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 $(TSAN_SUPP)"

# What each build's system pass runs (README, "Tests": the time budget). The normal
# build runs every module. The ASan+UBSan build runs the modules whose services free
# and hand over memory across threads and callbacks (intake's HTTP, claimer and
# recorder threads; deadline's firing rounds and their delivery callbacks;
# notification's planner and sender; kill -9 and restart), the TSan build the
# modules that drive the multi-threaded paths (intake's threads, assignment's
# parsing thread, notification's sender, readiness on HTTP threads while Kafka or
# Redis is frozen and while each service stops).
# SYSTEM_ASAN=tests/system SYSTEM_TSAN=tests/system runs all.
SYSTEM_ASAN ?= $(addprefix tests/system/,test_intake.py test_intake_crash.py \
	test_deadline.py test_notification.py test_foundation.py test_records.py \
	test_shutdown.py test_faults_kafka.py)
SYSTEM_TSAN ?= $(addprefix tests/system/,test_intake.py test_assignment.py \
	test_notification.py test_readiness.py test_shutdown.py)
# The normal and ASan passes run in two lanes at once (tests/system/lanes.sh): the
# modules on the shared stack, and beside them the fault modules on stacks of their own
# (Redis and the broker broken, instances churned, the clock stepped), their ports
# moved by 1000 more. The suite mostly waits on conditions,
# not on the CPU, so the two lanes together take little longer than the longer one.
SYSTEM_OWN := $(addprefix tests/system/,test_faults_clock.py test_faults_kafka.py \
	test_faults_rebalance.py test_faults_redis.py)
SYSTEM_SHARED := $(filter-out $(SYSTEM_OWN),$(sort $(wildcard tests/system/test_*.py)))

.PHONY: help deps lint build build-asan build-tsan unit contract deploy-check system test \
	run up down bench bench-intake bench-deadline bench-assignment bench-notification \
	bench-rebuild \
	configure configure-asan configure-tsan

help:
	@echo 'make deps        install missing packages and the Kafka jars (deploy/local/setup.sh)'
	@echo 'make build       configure once and build into $(BUILD)/'
	@echo 'make build-asan  the same with ASan and UBSan into $(BUILD_ASAN)/'
	@echo 'make build-tsan  the same with ThreadSanitizer into $(BUILD_TSAN)/'
	@echo 'make lint        clang-format check of all C, cppcheck on libs/ and services/, shellcheck on the scripts, yamllint'
	@echo 'make unit        unit tests in all three builds (ctest -L unit)'
	@echo 'make contract    schema and configuration contract tests (tests/contract)'
	@echo 'make deploy-check  Dockerfile, docker-compose.yml and deploy/k8s checked without an engine (tests/deploy)'
	@echo 'make system      system tests against a real local stack: all in the normal build, SYSTEM_ASAN and SYSTEM_TSAN in the sanitizer builds'
	@echo 'make test        deps, lint, the three builds, unit, contract, deploy and system tests'
	@echo 'make run         build and run the local stack in the foreground; Ctrl-C stops it'
	@echo 'make up / down   start the local stack in the background / stop it'
	@echo 'make bench       build and run the HTTP benchmarks (tests/bench/http.sh)'
	@echo 'make bench-intake  intake under load beside a hello world and kcat (tests/bench/intake.sh, about 90 s)'
	@echo 'make bench-deadline  1,000,000 open cases in one deadline: memory, fire lag, restart (tests/bench/deadline.py)'
	@echo 'make bench-assignment  1000 officers, 200 rules, a backlog through one instance beside kcat (tests/bench/assignment.sh, about 60 s)'
	@echo 'make bench-notification  jobs/s through the outbox and Kannel beside a raw sendsms loop (tests/bench/notification.sh)'
	@echo 'make bench-rebuild  every service rebuilding its Redis state from 1,000,000 cases, beside kcat (tests/bench/rebuild.py)'

deps:
	deploy/local/setup.sh

configure: deps
	@test -f $(BUILD)/build.ninja || cmake -S . -B $(BUILD) -G Ninja

configure-asan: deps
	@test -f $(BUILD_ASAN)/build.ninja || cmake -S . -B $(BUILD_ASAN) -G Ninja -DDUBAN_SANITIZE=ON

build: configure
	cmake --build $(BUILD)

build-asan: configure-asan
	cmake --build $(BUILD_ASAN)

configure-tsan: deps
	@test -f $(BUILD_TSAN)/build.ninja || cmake -S . -B $(BUILD_TSAN) -G Ninja -DDUBAN_TSAN=ON

build-tsan: configure-tsan
	cmake --build $(BUILD_TSAN)

unit: build build-asan build-tsan
	$(CTEST) --test-dir $(BUILD)
	$(ASAN_ENV) $(CTEST) --test-dir $(BUILD_ASAN)
	$(TSAN_ENV_UNIT) $(CTEST) --test-dir $(BUILD_TSAN)

contract: deps
	$(PYTHON) -m pytest -q tests/contract

# The container image, docker-compose.yml and deploy/k8s, checked without a Docker
# engine or a cluster: docker-compose parses the compose file, kubectl renders each
# overlay, tests/deploy reads what they produce (and builds the image's binaries).
deploy-check: deps
	DUBAN_PII_KEY=required-but-not-checked docker-compose -f docker-compose.yml config -q
	for overlay in deploy/k8s/overlays/*/; do \
		if command -v kubectl >/dev/null; then kubectl kustomize "$$overlay"; \
		else kustomize build "$$overlay"; fi >/dev/null; \
	done
	$(PYTHON) -m pytest -q tests/deploy

# The system tests start their own Kafka, Redis and services, once with each build.
system: build build-asan build-tsan
	PYTHON=$(PYTHON) tests/system/lanes.sh $(BUILD) $(BUILD)/system-own.log \
		$(SYSTEM_SHARED) -- $(SYSTEM_OWN)
	$(ASAN_ENV) PYTHON=$(PYTHON) tests/system/lanes.sh $(BUILD_ASAN) \
		$(BUILD_ASAN)/system-own.log $(filter-out $(SYSTEM_OWN),$(SYSTEM_ASAN)) -- \
		$(filter $(SYSTEM_OWN),$(SYSTEM_ASAN))
	$(TSAN_ENV_SYSTEM) DUBAN_BUILD_DIR=$(BUILD_TSAN) $(PYTHON) -m pytest -q $(SYSTEM_TSAN)

# Static analysis of the C code; warnings fail the build like compiler warnings do.
lint: deps
	clang-format --dry-run -Werror $$(find libs services tests -name '*.[ch]')
	cppcheck --quiet --enable=warning,portability,performance --std=c11 --inline-suppr \
		-I libs --suppress=missingIncludeSystem --error-exitcode=1 -j2 libs services
	shellcheck -x deploy/local/*.sh deploy/docker/*.sh deploy/docker/duban-healthcheck .ci/run \
		tests/bench/*.sh tests/system/lanes.sh
	yamllint -s .yamllint docker-compose.yml deploy

test: deps lint build build-asan build-tsan unit contract deploy-check system

run: build
	$(STACK) run

up: build
	$(STACK) up

down:
	$(STACK) down

bench: build
	tests/bench/http.sh $(BUILD)

bench-intake: build
	tests/bench/intake.sh $(BUILD)

bench-deadline: build
	$(PYTHON) tests/bench/deadline.py $(BUILD)

bench-rebuild: build
	$(PYTHON) tests/bench/rebuild.py $(BUILD)

bench-assignment: build
	tests/bench/assignment.sh $(BUILD)

bench-notification: build
	tests/bench/notification.sh $(BUILD)
