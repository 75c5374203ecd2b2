#!/bin/sh
# Model quality with DEFAULT options (issue 13, "good models without tuning"):
# on generated CTR-like data in four feature scalings (binary, counts,
# tf-idf L2 rows, real values ~100) and sorted by label, zps lr with no
# training options (--local, and 2 servers x 2 workers async) must reach
# test logloss <= 1.05 x LIBLINEAR's best-C logloss and AUC >= LIBLINEAR's
# - 0.005.  Everything is computed by scripts/bench-quality --quick --check
# (data sets and the C grid documented there); seeds are fixed, so the
# local runs are deterministic and the async ones vary only with timing.
. "$(dirname "$0")/lib.sh"
command -v liblinear-train >/dev/null || fail "liblinear-train missing (scripts/install-deps installs liblinear-tools)"
ZPS_BIN=$ZPS_BIN scripts/bench-quality --quick --check --dir "$TMP/bq" >"$TMP/bq.out" 2>&1
rc=$?
cat "$TMP/bq.out"
[ "$rc" = 0 ] || fail "quality bars not met (see the FAIL lines above)"
echo "it_quality: ok"
