# Millom-C: one Makefile builds every program, runs the stack and the tests.
#
#   make deps    install the Debian packages the build and tests need
#   make build   build everything into build/release (SAN=1: build/san)
#   make run     start the whole stack on this machine (sandbox profile)
#   make test    unit + integration tests, built with ASan and UBSan
#   make bench   wrk benchmarks against the stack and an nginx baseline
#   make clean   remove build/ and var/

SAN ?= 0
ifeq ($(SAN),1)
  BUILD := build/san
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPT := -O1
else
  BUILD := build/release
  SANFLAGS :=
  OPT := -O2
endif

CC      ?= cc
CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g $(OPT) $(SANFLAGS) -I. -I$(BUILD)/gen
LDFLAGS := $(SANFLAGS)
LIBS    := -lrdkafka -lmicrohttpd -lcurl -lprotobuf-c -lsqlite3 -ljansson -ljwt -lcrypto -lpthread -lm

PROTOS      := $(wildcard schemas/millom/v1/*.proto)
PROTO_C     := $(patsubst schemas/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
PROTO_H     := $(PROTO_C:.c=.h)
SHARED_SRC  := $(wildcard shared/*.c)
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

# Unit tests: tests/unit/test_<area>.c. A test named test_<service>_*.c also
# links that service's library.
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
INTEG_SRC := $(wildcard tests/integration/test_*.c)
INTEG_BINS:= $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(INTEG_SRC))
TESTLIB_SRC := $(wildcard tests/lib/*.c)
TESTLIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(TESTLIB_SRC))

.PHONY: all deps build run test unit integration bench clean
.SECONDARY:

all: build
build: $(BINS) $(UNIT_BINS) $(INTEG_BINS)

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

$(LIBMILLOM): $(SHARED_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TESTLIB_OBJ) $(BINS) $(LIBMILLOM)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(TESTLIB_OBJ) $(wildcard $(foreach s,$(SERVICES),$(if $(findstring _$(subst -,_,$(s))_,_$*_),$(BUILD)/lib$(s).a))) $(LIBMILLOM) -lcheck -lsubunit $(LIBS)
$(BUILD)/tests/%: $(BUILD)/obj/tests/integration/%.o $(TESTLIB_OBJ) $(BINS) $(LIBMILLOM)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(TESTLIB_OBJ) $(LIBMILLOM) -lcheck -lsubunit $(LIBS)

run: deps
	@$(MAKE) --no-print-directory build
	@BUILD=$(BUILD) PROFILE=$(PROFILE) scripts/run.sh

test: deps
	@$(MAKE) --no-print-directory SAN=1 build
	@BUILD=build/san scripts/test.sh

bench: deps
	@$(MAKE) --no-print-directory build
	@BUILD=build/release scripts/bench.sh

clean:
	rm -rf build var

-include $(shell find build -name '*.d' 2>/dev/null)
