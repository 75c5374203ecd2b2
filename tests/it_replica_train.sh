#!/bin/sh
# Replication under training load: zps-launch --replicas 2, 3 servers, 3
# workers, generated CTR data.  Run A is undisturbed; in run B server 1 is
# killed with -9 once worker 0 has finished its first pass, and nothing is
# restarted: the coordinator removes it, the workers fail over, the job
# must finish with exit 0, and worker 0's final test logloss and AUC must be
# within 1% of run A's.  Then the same with --replicas 3 and two servers
# killed at once (run C).
. "$(dirname "$0")/lib.sh"
D=$TMP
ROWS=${REPL_ROWS:-600000}
"$ZPS_BIN/zps-datagen" ctr --rows "$ROWS" --test-rows 40000 --features 20000 --nnz 20 --seed 5 \
    --out "$D/ctr" >"$D/datagen.log" 2>&1 || fail "datagen failed: $(cat "$D/datagen.log")"
TRAIN="--model lr --epochs 5 --train $D/ctr.train --test $D/ctr.test --cache-dir $D/cache"
LAUNCH="$(dirname "$0")/../scripts/zps-launch"
export ZPS_BIN

# run NAME R KILL...: the job, killing the listed server ranks after pass 1
run() {
    name=$1 r=$2; shift 2
    "$LAUNCH" --bin "$ZPS_BIN" --servers 3 --workers 3 --replicas "$r" --log-dir "$D/$name" --timeout 300 \
        -- $TRAIN >"$D/$name.out" 2>&1 &
    lp=$!
    PIDS="$PIDS $lp"
    if [ $# -gt 0 ]; then
        t=0
        until grep -q "epoch 1/5 done" "$D/$name/worker.0.log" 2>/dev/null; do
            t=$((t + 1)); [ $t -gt 1200 ] && fail "$name: worker 0 did not finish pass 1 in 120 s"
            kill -0 $lp 2>/dev/null || fail "$name: the job ended before pass 1 was done: $(tail -5 "$D/$name.out")"
            sleep 0.1
        done
        for k in "$@"; do
            pid=$(pgrep -f "zps-server --bind .* --rank $k --num-servers 3 .*$D/" | head -1)
            [ -n "$pid" ] || fail "$name: no process for server $k"
            kill -9 "$pid"
        done
        echo "$name: killed server(s) $* after worker 0's first pass"
    fi
    wait $lp || fail "$name: the job failed: $(tail -15 "$D/$name.out")"
    line=$(grep "epoch 5/5 test:" "$D/$name/worker.0.log" | tail -1)
    [ -n "$line" ] || fail "$name: no final test line in worker 0's log"
    eval "LL_$name=$(echo "$line" | sed -n 's/.*logloss \([0-9.]*\).*/\1/p')"
    eval "AUC_$name=$(echo "$line" | sed -n 's/.* auc \([0-9.]*\).*/\1/p')"
    echo "$name: $(echo "$line" | sed 's/.*test: //')"
}

run A 2
run B 2 1
grep -q "server/1 died" "$D/B.out" || fail "B: the launcher did not report server 1's death"
grep -q "removed server 1" "$D/B/coord.log" || fail "B: the coordinator did not remove server 1"
for w in 0 1 2; do
    grep -q "failing over" "$D/B/worker.$w.log" || fail "B: worker $w did not fail over"
done
run C 3 0 2
grep -q "removed server 0" "$D/C/coord.log" && grep -q "removed server 2" "$D/C/coord.log" ||
    fail "C: the coordinator did not remove servers 0 and 2"

# within 1% of the undisturbed run
for x in B C; do
    eval "ll=\$LL_$x auc=\$AUC_$x"
    awk -v a="$LL_A" -v b="$ll" 'BEGIN { exit !(b <= a * 1.01 && b >= a * 0.99) }' ||
        fail "$x: test logloss $ll is not within 1% of the undisturbed $LL_A"
    awk -v a="$AUC_A" -v b="$auc" 'BEGIN { exit !(b >= a * 0.99 && b <= a * 1.01) }' ||
        fail "$x: test AUC $auc is not within 1% of the undisturbed $AUC_A"
done
echo "ok: undisturbed logloss $LL_A auc $AUC_A; one server killed (R=2) $LL_B / $AUC_B; two killed (R=3) $LL_C / $AUC_C"
echo "it_replica_train: ok"
