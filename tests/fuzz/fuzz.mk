# tests/fuzz/fuzz.mk: libFuzzer harnesses (clang, -fsanitize=fuzzer,address,undefined).
# Included from the top-level Makefile (`include tests/fuzz/fuzz.mk`).
#
#   make fuzz           build every harness, then run each for FUZZ_SECONDS (60)
#   make fuzz-quick     the same for FUZZ_QUICK_SECONDS (30) each (make test: 10 s, make -j2: two at a time)
#   make fuzz-build     only build build/fuzz/fuzz_<name>
#   make fuzz-regress   run each harness once over its seed corpus (no fuzzing)
#   make fuzz-<name>    build and run one harness (FUZZ_SECONDS as above)
#
# Variables: FUZZ_SECONDS (per harness), FUZZ_CC (clang), FUZZ_ARGS (extra
# libFuzzer flags), FUZZ_TARGETS (subset, e.g. "keys vcodec").
#
# Every harness is tests/fuzz/fuzz_<name>.c; its seed corpus (valid and invalid
# examples, and every crash ever found as crash-<what>, a regression case) is
# tests/fuzz/corpus/<name>/, its optional dictionary tests/fuzz/<name>.dict.
# Fuzzing runs read the seeds and write what they discover to
# build/fuzz/corpus/<name>/ (kept between runs, never committed); a crash
# stops the run, leaves build/fuzz/artifacts/<name>/crash-<sha1> and fails make.
#
# The project's sources are compiled again with clang and the fuzzer's
# coverage instrumentation into build/fuzz/obj (the gcc build is untouched).

FUZZ_SAVED_GOAL := $(.DEFAULT_GOAL)

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_QUICK_SECONDS ?= 30
FUZZ_ARGS    ?=
FUZZ_DIR     := build/fuzz
FUZZ_OBJDIR  := $(FUZZ_DIR)/obj
FUZZ_GENDIR  := build/gen
# libmicrohttpd: the server objects reach zps_metrics_http
FUZZ_PKGS    := libzmq libprotobuf-c zlib libmicrohttpd
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -g -O1 -Wall -Wextra -D_GNU_SOURCE -DZPS_VERSION=\"fuzz\" \
                -Icommon -Ips -Iworker -I$(FUZZ_GENDIR) $(FUZZ_SAN) -MMD -MP \
                $(shell pkg-config --cflags $(FUZZ_PKGS) 2>/dev/null)
FUZZ_LIBS     = $(shell pkg-config --libs $(FUZZ_PKGS) 2>/dev/null) -lm -lpthread

FUZZ_LIB_SRC := $(wildcard common/*.c) $(filter-out ps/%_main.c,$(wildcard ps/*.c)) \
                $(filter-out worker/%_main.c,$(wildcard worker/*.c))
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_OBJDIR)/%.o) $(FUZZ_OBJDIR)/gen/zps.pb-c.o
FUZZ_LIB     := $(FUZZ_OBJDIR)/libzps-fuzz.a

FUZZ_ALL     := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_BINS    := $(FUZZ_ALL:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz fuzz-quick fuzz-build fuzz-regress $(FUZZ_ALL:%=fuzz-%)

fuzz-build: $(FUZZ_BINS)

# Library objects: coverage instrumentation without libFuzzer's main.
$(FUZZ_OBJDIR)/%.o: %.c | $(FUZZ_GENDIR)/zps.pb-c.h
	@mkdir -p $(dir $@)
	@echo "  CC    $< (fuzz)"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_OBJDIR)/gen/zps.pb-c.o: $(FUZZ_GENDIR)/zps.pb-c.c
	@mkdir -p $(dir $@)
	@echo "  CC    $< (fuzz)"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	$(Q)rm -f $@; ar rcs $@ $^

# Harnesses: tests/fuzz/fuzz_<name>.c -> build/fuzz/fuzz_<name>.  A harness
# of a tool's module lists its objects as extra prerequisites (below); they
# are linked before the library.
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(FUZZ_LIB) | $(FUZZ_GENDIR)/zps.pb-c.h
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -Iscripts/tools -Werror -fsanitize=fuzzer -o $@ $< \
	    $(filter $(FUZZ_OBJDIR)/scripts/%.o,$^) $(FUZZ_LIB) $(FUZZ_LIBS)

# fuzz_predict: zps-predict's stream reader (scripts/tools/predict_in.c).
$(FUZZ_DIR)/fuzz_predict: $(FUZZ_OBJDIR)/scripts/tools/predict_in.o
$(FUZZ_OBJDIR)/scripts/tools/%.o: FUZZ_CFLAGS += -Iscripts/tools

# Run one harness: seeds (and regression crashes) first, then FUZZ_SECONDS of
# fuzzing.  -timeout: a single input taking over 30 s is a hang.
define FUZZ_RUN
	@mkdir -p $(FUZZ_DIR)/corpus/$(1) $(FUZZ_DIR)/artifacts/$(1)
	@echo "== fuzz $(1): $(FUZZ_SECONDS) s =="
	$(Q)UBSAN_OPTIONS=print_stacktrace=1 $(FUZZ_DIR)/fuzz_$(1) -max_total_time=$(FUZZ_SECONDS) -timeout=30 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/$(1)/ \
	    $(if $(wildcard tests/fuzz/$(1).dict),-dict=tests/fuzz/$(1).dict) \
	    $(FUZZ_ARGS) $(FUZZ_DIR)/corpus/$(1) tests/fuzz/corpus/$(1) \
	    >$(FUZZ_DIR)/fuzz_$(1).log 2>&1 || \
	    { tail -n 60 $(FUZZ_DIR)/fuzz_$(1).log; echo "fuzz $(1): FAILED (log: $(FUZZ_DIR)/fuzz_$(1).log)"; exit 1; }
	@grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' $(FUZZ_DIR)/fuzz_$(1).log | tr '\n' ' '; \
	    echo; echo "fuzz $(1): ok, corpus $$(ls $(FUZZ_DIR)/corpus/$(1) | wc -l) inputs"

endef

$(FUZZ_ALL:%=fuzz-%): fuzz-%: $(FUZZ_DIR)/fuzz_%
	$(call FUZZ_RUN,$*)

fuzz: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
	$(foreach t,$(FUZZ_TARGETS),$(call FUZZ_RUN,$(t)))
	@echo "make fuzz: $(words $(FUZZ_TARGETS)) harnesses, $(FUZZ_SECONDS) s each, no crash"

# fuzz-quick: one target per harness, so that make -j2 (make test) runs two
# harnesses at a time (each for its FUZZ_QUICK_SECONDS, on its own core)
FUZZ_QUICK_RUNS := $(FUZZ_TARGETS:%=fuzz-quick-run-%)
.PHONY: $(FUZZ_QUICK_RUNS)
$(FUZZ_QUICK_RUNS): fuzz-quick-run-%: $(FUZZ_DIR)/fuzz_%
	$(call FUZZ_RUN,$*)
fuzz-quick: FUZZ_SECONDS = $(FUZZ_QUICK_SECONDS)
fuzz-quick: $(FUZZ_QUICK_RUNS)
	@echo "make fuzz-quick: $(words $(FUZZ_TARGETS)) harnesses, $(FUZZ_SECONDS) s each, no crash"

# Every seed and regression input once, no mutation (a few seconds).
define FUZZ_REGRESS
	@mkdir -p $(FUZZ_DIR)/artifacts/$(1)
	$(Q)UBSAN_OPTIONS=print_stacktrace=1 $(FUZZ_DIR)/fuzz_$(1) -runs=0 \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$(1)/ tests/fuzz/corpus/$(1) \
	    >$(FUZZ_DIR)/regress_$(1).log 2>&1 || \
	    { tail -n 40 $(FUZZ_DIR)/regress_$(1).log; echo "fuzz-regress $(1): FAILED"; exit 1; }

endef

fuzz-regress: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
	$(foreach t,$(FUZZ_TARGETS),$(call FUZZ_REGRESS,$(t)))
	@echo "fuzz-regress: $(words $(FUZZ_TARGETS)) harnesses passed their corpora"

-include $(shell find $(FUZZ_OBJDIR) -name '*.d' 2>/dev/null)

.DEFAULT_GOAL := $(FUZZ_SAVED_GOAL)
