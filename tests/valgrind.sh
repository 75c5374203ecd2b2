#!/bin/sh
# Memcheck over the release binaries (make valgrind):
#   1. the Check unit suites (bin/zps-check, CK_FORK=no so that valgrind sees
#      the tests themselves, not forked children), except the cases in
#      VG_EXCLUDE_CASE (default: the two large-scale cases, "balance" and
#      "big", which take many minutes under valgrind; set it empty to run all);
#   2. a small version of tests/it_kv.sh with every process under valgrind:
#      2 servers, 2 concurrent pushing clients, verify (every weight equals the
#      sum of all pushes), the malformed-message test, verify again, SIGTERM;
#   3. a small training job (zps-server, zps-worker with compression and key
#      caching, zps-predict on the saved model), each under valgrind.
# Every valgrind run must end with no error and no definite or possible leak
# (--error-exitcode, --errors-for-leak-kinds=definite,possible); a failing run
# prints its valgrind log.  Suppressions for third-party libraries, if any,
# live in tests/valgrind.supp.
#
# Environment: ZPS_BIN (bin), VG_EXCLUDE_CASE, VG_SKIP_UNIT=1 / VG_SKIP_INT=1 /
# VG_SKIP_TRAIN=1,
# VALGRIND (valgrind), KEEP_TMP=1 (keep the logs).
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=tests/lib.sh
. tests/lib.sh

VG_BIN=${VALGRIND:-valgrind}
command -v "$VG_BIN" >/dev/null 2>&1 || { echo "valgrind.sh: valgrind not installed (make deps)"; exit 1; }
VG_CODE=97
VG_SUPP=""
[ -f tests/valgrind.supp ] && VG_SUPP="--suppressions=tests/valgrind.supp"
VG="$VG_BIN --tool=memcheck --error-exitcode=$VG_CODE --leak-check=full
    --errors-for-leak-kinds=definite,possible --show-leak-kinds=definite,possible
    --num-callers=30 --track-origins=yes $VG_SUPP"
# vg NAME cmd...: runs cmd under memcheck, log in $TMP/NAME.vg.  (Background
# processes are started as "$VG ... &" directly, so that $! is valgrind's pid
# and signals reach the program, not a subshell.)
vg() {
    name=$1; shift
    # shellcheck disable=SC2086
    $VG --log-file="$TMP/$name.vg" "$@"
}

# vg_verdict NAME STATUS: explains a non-zero status of vg NAME.
vg_verdict() {
    if [ "$2" -eq 0 ]; then
        echo "valgrind: $1 clean ($(grep -o 'ERROR SUMMARY: [0-9]* errors' "$TMP/$1.vg" | head -n 1))"
        return 0
    fi
    echo "---- valgrind log of $1:" >&2
    cat "$TMP/$1.vg" >&2
    if [ "$2" -eq $VG_CODE ]; then
        echo "FAIL: valgrind found errors or leaks in $1 (log above)" >&2
    else
        echo "FAIL: $1 exited with status $2" >&2
    fi
    return 1
}

status=0

# ---- 1. unit suites ----------------------------------------------------------
if [ "${VG_SKIP_UNIT:-0}" != 1 ]; then
    echo "== valgrind: unit suites (excluded cases: ${VG_EXCLUDE_CASE-balance,big}) =="
    start=$(date +%s)
    CK_FORK=no CK_EXCLUDE_CASE=${VG_EXCLUDE_CASE-balance,big} ZPS_TEST_VARIANT=valgrind \
        vg check "$ZPS_BIN/zps-check" >"$TMP/check.out" 2>&1
    rc=$?
    tail -n 3 "$TMP/check.out"
    echo "(unit suites: $(( $(date +%s) - start )) s)"
    if ! vg_verdict check $rc; then
        tail -n 40 "$TMP/check.out" >&2
        status=1
    fi
fi

# ---- 2. kv integration, every process under valgrind --------------------------
if [ "${VG_SKIP_INT:-0}" != 1 ]; then
    echo "== valgrind: kv integration (2 servers, 2 clients) =="
    start=$(date +%s)
    n=2
    SERVERS=""
    SERVER_PIDS=""
    i=0
    while [ $i -lt $n ]; do
        rm -f "$TMP/ready.$i"
        # shellcheck disable=SC2086
        $VG --log-file="$TMP/server$i.vg" "$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 --rank $i --num-servers $n \
            --ready-file "$TMP/ready.$i" --table-dim 1 --optimizer sgd --lr 0.5 \
            >"$TMP/server.$i.out" 2>"$TMP/server.$i.log" &
        pid=$!
        PIDS="$PIDS $pid"
        SERVER_PIDS="$SERVER_PIDS $pid"
        eval "SPID_$i=$pid"
        i=$((i + 1))
    done
    i=0
    while [ $i -lt $n ]; do
        t=0
        while [ ! -s "$TMP/ready.$i" ]; do
            eval "p=\$SPID_$i"
            kill -0 "$p" 2>/dev/null ||
                { cat "$TMP/server$i.vg" >&2; fail "server $i (under valgrind) exited at start"; }
            t=$((t + 1))
            [ $t -gt 1200 ] && fail "server $i (under valgrind) did not become ready in 120 s"
            sleep 0.1
        done
        SERVERS="${SERVERS:+$SERVERS,}$(cat "$TMP/ready.$i")"
        i=$((i + 1))
    done
    echo "servers: $SERVERS"

    ROUNDS=3 KEYS=3000 SEED=4242
    cpids=""
    for c in 0 1; do
        # shellcheck disable=SC2086
        $VG --log-file="$TMP/client$c.vg" "$ZPS_BIN/it_kv" push --servers "$SERVERS" --client $c --rounds $ROUNDS \
            --keys $KEYS --seed $SEED >"$TMP/client.$c.log" 2>&1 &
        cpids="$cpids $!:$c"
    done
    for pc in $cpids; do
        wait "${pc%%:*}"
        vg_verdict "client${pc#*:}" $? || { cat "$TMP/client.${pc#*:}.log" >&2; status=1; }
    done
    vg verify "$ZPS_BIN/it_kv" verify --servers "$SERVERS" --clients 2 --rounds $ROUNDS \
        --keys $KEYS --seed $SEED --lr 0.5 >"$TMP/verify.log" 2>&1
    vg_verdict verify $? || { cat "$TMP/verify.log" >&2; status=1; }
    vg errors "$ZPS_BIN/it_kv" errors --servers "${SERVERS%%,*}" >"$TMP/errors.log" 2>&1
    vg_verdict errors $? || { cat "$TMP/errors.log" >&2; status=1; }
    vg verify2 "$ZPS_BIN/it_kv" verify --servers "$SERVERS" --clients 2 --rounds $ROUNDS \
        --keys $KEYS --seed $SEED --lr 0.5 >"$TMP/verify2.log" 2>&1
    vg_verdict verify2 $? || { cat "$TMP/verify2.log" >&2; status=1; }

    # SIGTERM: a clean exit, then valgrind's leak check of the whole server
    for p in $SERVER_PIDS; do kill -TERM "$p"; done
    i=0
    for p in $SERVER_PIDS; do
        t=0
        while kill -0 "$p" 2>/dev/null; do
            t=$((t + 1))
            [ $t -gt 600 ] && fail "server $p (under valgrind) still running 60 s after SIGTERM"
            sleep 0.1
        done
        wait "$p"
        vg_verdict server$i $? || { tail -n 20 "$TMP/server.$i.log" >&2; status=1; }
        i=$((i + 1))
    done
    PIDS=""
    echo "(kv integration: $(( $(date +%s) - start )) s)"
fi

# ---- 3. a small training job: server, worker, predict under valgrind ------------
# covers what the kv test does not: data reader and its cache, training loop,
# model, compressed pushes and pulls, key caching, saving and loading a model
if [ "${VG_SKIP_TRAIN:-0}" != 1 ]; then
    echo "== valgrind: training job (lr, 1 server, 1 worker, fp16 + pull-int8 + keycache) =="
    start=$(date +%s)
    "$ZPS_BIN/zps-datagen" ctr --rows 4000 --test-rows 500 --features 3000 --nnz 20 --seed 3 \
        --out "$TMP/ctr" >"$TMP/datagen.log" 2>&1 || fail "datagen failed"
    OPTS="--model lr --train $TMP/ctr.train --test $TMP/ctr.test --optimizer ftrl --lr 0.1
          --epochs 2 --batch 200 --compress fp16,pull-int8,keycache --cache-dir $TMP/cache"
    rm -f "$TMP/tready"
    # shellcheck disable=SC2086
    $VG --log-file="$TMP/tserver.vg" "$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 --rank 0 \
        --num-servers 1 --num-workers 1 --ready-file "$TMP/tready" --save-model "$TMP/model" \
        $OPTS >"$TMP/tserver.out" 2>"$TMP/tserver.log" &
    tpid=$!
    PIDS="$PIDS $tpid"
    t=0
    while [ ! -s "$TMP/tready" ]; do
        kill -0 $tpid 2>/dev/null || { cat "$TMP/tserver.vg" >&2; fail "training server exited at start"; }
        t=$((t + 1))
        [ $t -gt 1200 ] && fail "training server (under valgrind) not ready in 120 s"
        sleep 0.1
    done
    # shellcheck disable=SC2086
    vg tworker "$ZPS_BIN/zps-worker" --servers "$(cat "$TMP/tready")" --rank 0 --num-workers 1 \
        --connect-timeout 120 $OPTS >"$TMP/tworker.log" 2>&1
    vg_verdict tworker $? || { tail -n 20 "$TMP/tworker.log" >&2; status=1; }
    grep "test:" "$TMP/tworker.log" | tail -n 1
    kill -TERM $tpid
    t=0
    while kill -0 $tpid 2>/dev/null; do
        t=$((t + 1))
        [ $t -gt 600 ] && fail "training server still running 60 s after SIGTERM"
        sleep 0.1
    done
    wait $tpid
    vg_verdict tserver $? || { tail -n 20 "$TMP/tserver.log" >&2; status=1; }
    PIDS=""
    vg predict "$ZPS_BIN/zps-predict" --model "$TMP/model" --data "$TMP/ctr.test" \
        --out "$TMP/pred" --metrics >"$TMP/predict.log" 2>&1
    vg_verdict predict $? || { cat "$TMP/predict.log" >&2; status=1; }
    echo "(training job: $(( $(date +%s) - start )) s)"
fi

if [ $status -ne 0 ]; then
    echo "valgrind: FAILED" >&2
    exit 1
fi
echo "valgrind: all runs clean"
