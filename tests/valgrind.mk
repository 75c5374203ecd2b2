# tests/valgrind.mk: `make valgrind`, memcheck over the release build.
# Included from the top-level Makefile (`include tests/valgrind.mk`).
#
#   make valgrind    build bin/*, then tests/valgrind.sh: the Check unit suites
#                    (CK_FORK=no) and a small kv integration run (servers and
#                    clients) under valgrind --leak-check=full; fails on any
#                    valgrind error or definite/possible leak.
# Variables: VG_EXCLUDE_CASE (Check cases to leave out; default "balance,big",
# the two large-scale cases), VG_SKIP_UNIT=1, VG_SKIP_INT=1, KEEP_TMP=1.

VG_SAVED_GOAL := $(.DEFAULT_GOAL)

.PHONY: valgrind
valgrind:
	$(Q)$(MAKE) --no-print-directory VARIANT=release build
	$(Q)ZPS_BIN=bin tests/valgrind.sh

.DEFAULT_GOAL := $(VG_SAVED_GOAL)
