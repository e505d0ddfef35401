# Millom-C: one Makefile builds every program, runs the stack and the tests.
#
#   make deps    install the Debian packages the build and tests need
#   make build   build everything into build/release (SAN=1: build/san)
#   make run     start the whole stack on this machine (sandbox profile)
#   make test    unit + integration tests, built with ASan and UBSan
#                (SAN=thread: with ThreadSanitizer, in build/tsan)
#   make bench   wrk benchmarks against the stack and an nginx baseline
#   make fuzz    libFuzzer (clang) on api-edge's parsing, FUZZ_SECONDS (60)
#   make chaos   kill services at random under load, then check nothing was lost (CHAOS_SECONDS, 120)
#   make lint    clang-format check (.clang-format) and a -Wshadow build of every C file
#   make format  apply .clang-format to every C file
#   make clean   remove build/ and var/

# Builds use every core (the machine's: nproc); the test runs themselves
# run TEST_JOBS (2) programs at a time (scripts/test.sh).
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 1)

SAN ?= 0
ifeq ($(SAN),1)
  BUILD := build/san
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPT := -O1
else ifeq ($(SAN),thread)
  BUILD := build/tsan
  SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
  OPT := -O1
else
  BUILD := build/release
  SANFLAGS :=
  # Frame pointers: `make profile` (perf record -g) walks Millom's own
  # frames; the cost is about one register.
  OPT := -O2 -fno-omit-frame-pointer
endif
# BUILD_DIR=... puts a build tree elsewhere (two builds side by side).
ifdef BUILD_DIR
  BUILD := $(BUILD_DIR)
endif

CC      ?= cc
CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g $(OPT) $(SANFLAGS) -I. -I$(BUILD)/gen $(EXTRA_CFLAGS)
LDFLAGS := $(SANFLAGS)
LIBS    := -lrdkafka -lmicrohttpd -lcurl -lprotobuf-c -lsqlite3 -ljansson -ljwt -lcrypto -lpthread -lm
# ThreadSanitizer build: every program also links C11 threads over the
# intercepted pthread calls (why: tests/sanitizer/tsan_c11_threads.c).
ifeq ($(SAN),thread)
  TSAN_SHIM := $(BUILD)/obj/tests/sanitizer/tsan_c11_threads.o
  LIBS := $(TSAN_SHIM) $(LIBS)
endif

PROTOS      := $(wildcard schemas/millom/v1/*.proto)
PROTO_C     := $(patsubst schemas/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
PROTO_H     := $(PROTO_C:.c=.h)
SHARED_SRC  := $(wildcard shared/*/*.c)
SHARED_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(SHARED_SRC)) $(PROTO_C:.c=.o)
LIBMILLOM   := $(BUILD)/libmillom.a

SERVICES := $(notdir $(wildcard services/*))
BINS     := $(addprefix $(BUILD)/bin/,$(SERVICES))

# Each service folder builds into lib<service>.a (everything but main.c) so
# unit tests can link a service's logic without its main().
define service_rules
$(1)_SRC := $$(filter-out services/$(1)/main.c,$$(wildcard services/$(1)/*.c))
$(1)_OBJ := $$(patsubst %.c,$(BUILD)/obj/%.o,$$($(1)_SRC))
$(BUILD)/lib$(1).a: $$($(1)_OBJ)
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^
$(BUILD)/bin/$(1): $(BUILD)/obj/services/$(1)/main.o $(BUILD)/lib$(1).a $(LIBMILLOM)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rules,$(s))))

# Bench programs: bench/<name>/main.c builds into $(BUILD)/bench/<name>
# (rpc-echo: scripts/bench_kafka_floor.sh), on the shared library like a
# service.
BENCH_BINS := $(patsubst bench/%/main.c,$(BUILD)/bench/%,$(wildcard bench/*/main.c))
$(BUILD)/bench/%: $(BUILD)/obj/bench/%/main.o $(LIBMILLOM)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# Unit tests: tests/unit/test_<area>.c. A test named test_<service>_*.c also
# links that service's library.
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
INTEG_SRC := $(wildcard tests/integration/test_*.c)
INTEG_BINS:= $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(INTEG_SRC))
TESTLIB_SRC := $(wildcard tests/lib/*.c)
TESTLIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(TESTLIB_SRC))

.PHONY: all deps build run test unit integration bench profile fuzz chaos lint format clean
.SECONDARY:

all: build
build: $(BINS) $(BENCH_BINS) $(UNIT_BINS) $(INTEG_BINS)

deps:
	@scripts/deps.sh

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: schemas/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=schemas --c_out=$(BUILD)/gen $<

$(BUILD)/obj/%.o: %.c $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c $(PROTO_H)
	$(CC) $(CFLAGS) -Wno-unused-parameter -c -o $@ $<

$(LIBMILLOM): $(SHARED_OBJ) | $(TSAN_SHIM)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TESTLIB_OBJ) $(BINS) $(LIBMILLOM)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(TESTLIB_OBJ) $(wildcard $(foreach s,$(SERVICES),$(if $(findstring _$(subst -,_,$(s))_,_$*_),$(BUILD)/lib$(s).a))) $(LIBMILLOM) -lcheck -lsubunit $(LIBS)
$(BUILD)/tests/%: $(BUILD)/obj/tests/integration/%.o $(TESTLIB_OBJ) $(BINS) $(LIBMILLOM)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(TESTLIB_OBJ) $(LIBMILLOM) -lcheck -lsubunit $(LIBS)

run: deps
	@$(MAKE) --no-print-directory build
	@BUILD=$(BUILD) PROFILE=$(PROFILE) INSTANCES=$(INSTANCES) scripts/run.sh

# `make test` builds with ASan+UBSan; `make test SAN=thread` with
# ThreadSanitizer (build/tsan, suppressions in tests/tsan.supp).
TEST_SAN   := $(if $(filter thread,$(SAN)),thread,1)
TEST_BUILD := $(if $(filter thread,$(SAN)),build/tsan,build/san)
test: deps
	@$(MAKE) --no-print-directory SAN=$(TEST_SAN) build
	@BUILD=$(TEST_BUILD) scripts/test.sh

bench: deps
	@$(MAKE) --no-print-directory build
	@BUILD=build/release scripts/bench.sh

# Where the CPU goes: the read and purchase scenarios of the bench once
# more under `perf record -g`, one report per Millom program and scenario
# in var/bench/profile/ (scripts/bench.sh, BENCH_PERF=1).
PROFILE_SCENARIOS ?= balance_miss,balance_hit,upsell,purchase
profile: deps
	@PERF=1 scripts/deps.sh
	@$(MAKE) --no-print-directory build
	@BUILD=build/release BENCH_PERF=1 BENCH_RUNS=1 BENCH_PIPELINES=0 \
	  BENCH_SCENARIOS=$(PROFILE_SCENARIOS) scripts/bench.sh

# Chaos: a stack of its own (ports 19680..19686, var/chaos) under mixed
# load while random services are killed with SIGKILL and restarted; then a
# table of checks (scripts/chaos.sh). CHAOS_SECONDS (120).
chaos: deps
	@$(MAKE) --no-print-directory build
	@BUILD=$(BUILD) scripts/chaos.sh

# libFuzzer on api-edge's request parsing and validation (tests/fuzz/).
# Built with clang only (its own objects in build/fuzz/obj; `make test`
# never needs clang). New corpus entries go to build/fuzz/corpus, not to
# the repository's seeds; a crash input lands in build/fuzz/artifacts and
# fails the target.
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -g -O1 $(FUZZ_SAN) -I. -I$(FUZZ_DIR)/gen
FUZZ_PROTO_C := $(patsubst schemas/%.proto,$(FUZZ_DIR)/gen/%.pb-c.c,$(PROTOS))
FUZZ_PROTO_H := $(FUZZ_PROTO_C:.c=.h)
FUZZ_SRC     := $(filter-out services/api-edge/main.c,$(wildcard services/api-edge/*.c)) $(SHARED_SRC)
FUZZ_OBJ     := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_SRC)) \
                $(patsubst $(FUZZ_DIR)/gen/%.c,$(FUZZ_DIR)/obj/gen/%.o,$(FUZZ_PROTO_C))

fuzz:
	@FUZZ=1 scripts/deps.sh
	@$(MAKE) --no-print-directory $(FUZZ_DIR)/fuzz_api_edge
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts
	cp -n tests/fuzz/seeds/* $(FUZZ_DIR)/corpus/
	$(FUZZ_DIR)/fuzz_api_edge -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	  -artifact_prefix=$(FUZZ_DIR)/artifacts/ -print_final_stats=1 \
	  $(FUZZ_DIR)/corpus/ tests/fuzz/seeds/

$(FUZZ_DIR)/gen/%.pb-c.c $(FUZZ_DIR)/gen/%.pb-c.h: schemas/%.proto
	@mkdir -p $(FUZZ_DIR)/gen
	protoc-c --proto_path=schemas --c_out=$(FUZZ_DIR)/gen $<

$(FUZZ_DIR)/obj/%.o: %.c $(FUZZ_PROTO_H)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/obj/gen/%.pb-c.o: $(FUZZ_DIR)/gen/%.pb-c.c $(FUZZ_PROTO_H)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Wno-unused-parameter -c -o $@ $<

$(FUZZ_DIR)/fuzz_api_edge: tests/fuzz/fuzz_api_edge.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

# Every C file git knows of (generated code lives in build/ and is not).
C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

lint: deps
	@scripts/lint.sh

format:
	clang-format -i $(C_FILES)

clean:
	rm -rf build var

-include $(shell find build -name '*.d' 2>/dev/null)
