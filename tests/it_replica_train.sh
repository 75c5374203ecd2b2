#!/bin/sh
# Replication under training load: zps-launch --replicas 2, 3 servers, 3
# workers, generated CTR data.  Run A is undisturbed; in run B server 1 is
# killed with -9 once worker 0 has finished its first pass, and nothing is
# restarted: the coordinator removes it, the workers fail over, the job
# must finish with exit 0, and worker 0's final test logloss and AUC must be
# within 1% of run A's.  Then the same with --replicas 3 and two servers
# killed at once (run C).  Run D (--replicas 2 --restart-servers 3): each
# server in turn is killed with -9 and started fresh by zps-launch; it
# rejoins (copies its ranges while the job trains) before the next kill;
# the job finishes with exit 0 and within 1% of run A.  B and C save the model (--save-model): it must
# be one model whatever failed -- the manifest lists the surviving servers'
# shards, each key is in exactly one of them (its range's primary's), and
# zps-predict's test metrics on it are within 1% of run A's.
. "$(dirname "$0")/lib.sh"
D=$TMP
ROWS=${REPL_ROWS:-1000000}
"$ZPS_BIN/zps-datagen" ctr --rows "$ROWS" --test-rows 40000 --features 20000 --nnz 20 --seed 5 \
    --out "$D/ctr" >"$D/datagen.log" 2>&1 || fail "datagen failed: $(cat "$D/datagen.log")"
TRAIN="--model lr --epochs 6 --train $D/ctr.train --test $D/ctr.test --cache-dir $D/cache"
LAUNCH="$(dirname "$0")/../scripts/zps-launch"
export ZPS_BIN

# run NAME R KILL...: the job, killing the listed server ranks after pass 1
run() {
    name=$1 r=$2; shift 2
    save=""; [ $# -gt 0 ] && save="--save-model $D/model.$name"
    restart=""; [ "$name" = D ] && restart="--restart-servers 3"
    "$LAUNCH" --bin "$ZPS_BIN" --servers 3 --workers 3 --replicas "$r" --log-dir "$D/$name" --timeout 300 \
        $save $restart -- $TRAIN >"$D/$name.out" 2>&1 &
    lp=$!
    PIDS="$PIDS $lp"
    if [ $# -gt 0 ]; then
        t=0
        until grep -q "epoch 1/6 done" "$D/$name/worker.0.log" 2>/dev/null; do
            t=$((t + 1)); [ $t -gt 1200 ] && fail "$name: worker 0 did not finish pass 1 in 120 s"
            kill -0 $lp 2>/dev/null || fail "$name: the job ended before pass 1 was done: $(tail -5 "$D/$name.out")"
            sleep 0.1
        done
        if [ "$name" = D ]; then
            # each in turn, the next once the previous one has rejoined
            for k in "$@"; do
                pid=$(pgrep -f "zps-server --bind .* --rank $k --num-servers 3 .*$D/" | head -1)
                [ -n "$pid" ] || fail "$name: no process for server $k"
                kill -9 "$pid"
                t=0
                until grep -q "server $k completed its join" "$D/$name/coord.log" 2>/dev/null; do
                    t=$((t + 1)); [ $t -gt 300 ] && fail "$name: server $k did not rejoin within 30 s: $(tail -5 "$D/$name.out")"
                    kill -0 $lp 2>/dev/null || fail "$name: the job ended before server $k had rejoined: make it longer"
                    sleep 0.1
                done
                echo "$name: killed server $k; it rejoined: $(grep "server $k completed its join" "$D/$name/coord.log" | sed 's/.*info: //')"
            done
            kill -0 $lp 2>/dev/null || fail "$name: the job ended before the last rejoin was trained on: make it longer"
        else
            for k in "$@"; do
                pid=$(pgrep -f "zps-server --bind .* --rank $k --num-servers 3 .*$D/" | head -1)
                [ -n "$pid" ] || fail "$name: no process for server $k"
                kill -9 "$pid"
            done
            echo "$name: killed server(s) $* after worker 0's first pass"
        fi
    fi
    wait $lp || fail "$name: the job failed: $(tail -15 "$D/$name.out")"
    line=$(grep "epoch 6/6 test:" "$D/$name/worker.0.log" | tail -1)
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
run D 2 1 2 0
[ "$(grep -c "starting it fresh to rejoin" "$D/D.out")" = 3 ] || fail "D: the launcher did not restart the 3 servers"
grep -q "removed server 0" "$D/C/coord.log" && grep -q "removed server 2" "$D/C/coord.log" ||
    fail "C: the coordinator did not remove servers 0 and 2"

# the saved models: the survivors' shards, every key once
check_model() {
    m=$D/model.$1
    grep -q "^shards $2\$" "$m/manifest" || fail "$1: manifest does not list shards '$2': $(grep shards "$m/manifest")"
    for k in $3; do ls "$m"/shard-$k-of-*.bin >/dev/null 2>&1 && fail "$1: a shard of dead server $k"; done
    ls "$m"/shard-*-of-*.bin >/dev/null 2>&1 || fail "$1: no shard files in $m"
    "$ZPS_BIN/zps-predict" --model "$m" --export --out "$D/export.$1" 2>"$D/export.$1.log" ||
        fail "$1: zps-predict --export: $(cat "$D/export.$1.log")"
    dups=$(grep -v '^#' "$D/export.$1" | awk '{ print $1 }' | sort | uniq -d | wc -l)
    [ "$dups" -eq 0 ] || fail "$1: $dups keys saved twice"
    "$ZPS_BIN/zps-predict" --model "$m" --data "$D/ctr.test" --metrics --out "$D/pred.$1" \
        >"$D/pred.$1.metrics" 2>"$D/pred.$1.log" || fail "$1: zps-predict: $(cat "$D/pred.$1.log")"
    grep -q "from 1 shard\|from 2 shards" "$D/pred.$1.log" || fail "$1: $(cat "$D/pred.$1.log")"
    eval "PAUC_$1=$(awk '{ for (i = 1; i < NF; i++) if ($i == "auc") print $(i + 1) }' "$D/pred.$1.metrics" | head -1)"
    echo "$1: saved model ($(grep -vc '^#' "$D/export.$1") keys, shards $2): $(cat "$D/pred.$1.metrics")"
}
check_model B "0 2" 1
check_model C "1" "0 2"
for x in B C; do
    eval "pauc=\$PAUC_$x"
    awk -v a="$AUC_A" -v b="$pauc" 'BEGIN { exit !(b >= a * 0.99 && b <= a * 1.01) }' ||
        fail "$x: the saved model's test AUC $pauc is not within 1% of the undisturbed $AUC_A"
done

# within 1% of the undisturbed run
for x in B C D; do
    eval "ll=\$LL_$x auc=\$AUC_$x"
    awk -v a="$LL_A" -v b="$ll" 'BEGIN { exit !(b <= a * 1.01 && b >= a * 0.99) }' ||
        fail "$x: test logloss $ll is not within 1% of the undisturbed $LL_A"
    awk -v a="$AUC_A" -v b="$auc" 'BEGIN { exit !(b >= a * 0.99 && b <= a * 1.01) }' ||
        fail "$x: test AUC $auc is not within 1% of the undisturbed $AUC_A"
done
echo "ok: undisturbed logloss $LL_A auc $AUC_A; one server killed (R=2) $LL_B / $AUC_B; two killed (R=3) $LL_C / $AUC_C; each killed and rejoined in turn (R=2) $LL_D / $AUC_D"
echo "it_replica_train: ok"
