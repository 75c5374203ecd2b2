#!/bin/sh
# Configuration from the environment (common/zps_env): a 2-server,
# 2-worker job whose daemons get every option from ZPS_* variables, as a
# Kubernetes ConfigMap or a batch system would set them, and no flag:
#   1. it trains to the same quality bar as tests/it_train.sh, and saves a
#      model that zps-predict scores;
#   2. each daemon logs which variables it took;
#   3. a flag wins over its variable (--rank on the command line);
#   4. a bad value is refused naming the variable; an unknown ZPS_* variable
#      is logged as ignored, not silently dropped.
. "$(dirname "$0")/lib.sh"
D=$TMP
metric() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' "$2"; }
truth() { sed -n "s/^$1=//p" "$2.truth"; }
check() {
    if awk "BEGIN { exit !($2) }"; then echo "ok: $1"; else fail "$1 ($2)"; fi
}

"$ZPS_BIN/zps-datagen" ctr --rows 100000 --test-rows 10000 --features 1000 --nnz 40 --seed 11 \
    --out "$D/ctr" >"$D/datagen.log" 2>&1 || fail "datagen failed: $(cat "$D/datagen.log")"

# the job's options, once, as variables (what a ConfigMap holds)
export ZPS_MODEL=lr ZPS_OPTIMIZER=ftrl ZPS_LR=0.1 ZPS_EPOCHS=3 ZPS_SEED=5
export ZPS_TRAIN="$D/ctr.train" ZPS_TEST="$D/ctr.test" ZPS_CACHE_DIR="$D"
export ZPS_NUM_SERVERS=2 ZPS_NUM_WORKERS=2 ZPS_CONNECT_TIMEOUT=60 ZPS_EPOCH_TYPO=1

# servers: rank and bind address per process, nothing on the command line
for r in 0 1; do
    ZPS_RANK=$r ZPS_BIND=tcp://127.0.0.1:0 ZPS_READY_FILE="$D/ready.$r" \
        ZPS_SAVE_MODEL="$D/model" "$ZPS_BIN/zps-server" >"$D/server.$r.out" 2>"$D/server.$r.log" &
    eval "SP$r=\$!"
    PIDS="$PIDS $!"
done
for r in 0 1; do
    t=0
    while [ ! -s "$D/ready.$r" ]; do
        t=$((t + 1)); [ $t -gt 300 ] && fail "server $r not ready in 30 s"; sleep 0.1
    done
done
export ZPS_SERVERS="$(cat "$D/ready.0"),$(cat "$D/ready.1")"
# workers: worker 1 gets its rank as a flag over a wrong variable (the flag wins)
ZPS_RANK=0 "$ZPS_BIN/zps-worker" >"$D/worker.0.out" 2>"$D/worker.0.log" &
W0=$!; PIDS="$PIDS $W0"
ZPS_RANK=0 "$ZPS_BIN/zps-worker" --rank 1 >"$D/worker.1.out" 2>"$D/worker.1.log" &
W1=$!; PIDS="$PIDS $W1"
wait "$W0" || fail "worker 0 failed"
wait "$W1" || fail "worker 1 failed"
kill -TERM "$SP0" "$SP1"
wait "$SP0" || fail "server 0 failed"
wait "$SP1" || fail "server 1 failed"
echo "ok: a 2x2 job configured only through ZPS_* variables ran"

grep -q "options from the environment:.*ZPS_RANK=1 " "$D/server.1.log" ||
    fail "server 1 does not log the variables it took"
grep -q "environment overridden by the command line: ZPS_RANK" "$D/worker.1.log" ||
    fail "worker 1 does not say its --rank flag won over ZPS_RANK"
grep -q "ignored (no such option of zps-worker): .*ZPS_EPOCH_TYPO" "$D/worker.0.log" ||
    fail "an unknown ZPS_* variable is not reported"
echo "ok: variables taken, overridden and ignored are logged"

unset ZPS_SERVERS ZPS_EPOCH_TYPO
"$ZPS_BIN/zps-predict" --model "$D/model" --data "$D/ctr.test" --out "$D/pred" --metrics >"$D/metrics" ||
    fail "zps-predict failed on the saved model"
auc=$(metric auc "$D/metrics"); tauc=$(truth test_auc "$D/ctr")
echo "env-configured 2x2: test AUC $auc, ground truth $tauc"
check "AUC within 0.01 of the ground truth" "$auc >= $tauc - 0.01"

# refusals: a bad value names its variable; a bad flag value names the variable too
ZPS_NUM_WORKERS=two "$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 >/dev/null 2>"$D/bad.err"
rc=$?
[ $rc -eq 2 ] || fail "a bad ZPS_NUM_WORKERS: exit $rc, expected 2"
grep -q "ZPS_NUM_WORKERS=two" "$D/bad.err" || fail "the error does not name ZPS_NUM_WORKERS: $(cat "$D/bad.err")"
ZPS_NO_CACHE=maybe "$ZPS_BIN/zps-worker" >/dev/null 2>"$D/bad2.err"
rc=$?
[ $rc -eq 2 ] || fail "a bad ZPS_NO_CACHE: exit $rc, expected 2"
grep -q "ZPS_NO_CACHE" "$D/bad2.err" || fail "the error does not name ZPS_NO_CACHE: $(cat "$D/bad2.err")"
echo "ok: bad values are refused naming the variable"
