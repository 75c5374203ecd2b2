#!/bin/bash
# Chaos: 2 servers x 3 workers training lr under zps-launch with restarts on;
# at seeded random moments kill -9 a worker, then a server, then both.  The
# job must complete and land within 2% of an undisturbed run's test logloss.
. "$(dirname "$0")/lib.sh"
LAUNCH="$(pwd)/scripts/zps-launch --bin $ZPS_BIN"
D=$TMP
SEED=${CHAOS_SEED:-7}
metric() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' "$2"; }
"$ZPS_BIN/zps-datagen" ctr --rows 200000 --test-rows 20000 --features 1000 --nnz 40 --seed 91 \
    --out "$D/c" >/dev/null 2>&1 || fail "datagen failed"
JOB="--model lr --optimizer ftrl --lr 0.1 --seed 3 --train $D/c.train --epochs 16 --batch 200
     --cache-dir $D --server-timeout 60 --progress-every 1 --slow-worker 1 --slow-factor 2"

$LAUNCH --servers 2 --workers 3 --save-model "$D/ref.model" -- $JOB >"$D/ref.out" 2>&1 ||
    fail "undisturbed run failed: $(tail -5 "$D/ref.out")"
"$ZPS_BIN/zps-predict" --model "$D/ref.model" --data "$D/c.test" --out "$D/ref.pred" --metrics \
    >"$D/ref.met" 2>/dev/null || fail "predict failed"

RANDOM=$SEED
$LAUNCH --servers 2 --workers 3 --restart-servers 3 --restart-workers 3 --timeout 300 \
    --log-dir "$D/logs" --save-model "$D/chaos.model" -- $JOB \
    --checkpoint-dir "$D/ck" --checkpoint-every 0.5 >"$D/chaos.out" 2>&1 &
lp=$!
PIDS="$PIDS $lp"
pid_of() { pgrep -f "$ZPS_BIN/$1 .*--rank $2 .*$D/c.train" | head -n 1; }
nap() { sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.8 + (r % 100) / 100 }')"; }
nap
w=$((RANDOM % 3)); p=$(pid_of zps-worker $w)
[ -n "$p" ] && kill -9 "$p" && echo "chaos: killed worker $w (pid $p)"
nap
s=$((RANDOM % 2)); p=$(pid_of zps-server $s)
[ -n "$p" ] && kill -9 "$p" && echo "chaos: killed server $s (pid $p)"
nap
w=$((RANDOM % 3)); s=$((RANDOM % 2))
p1=$(pid_of zps-worker $w); p2=$(pid_of zps-server $s)
[ -n "$p1" ] && [ -n "$p2" ] && kill -9 "$p1" "$p2" && echo "chaos: killed worker $w and server $s"
wait $lp || fail "the job did not survive: $(grep launcher "$D/chaos.out" | tail -8)"
grep "launcher:" "$D/chaos.out" | grep -E "died|back at|restarting" | sed 's/^/  /'
[ "$(grep -c 'restarting it' "$D/chaos.out")" -ge 3 ] || fail "fewer than 3 restarts happened (the job ended too soon?)"
grep -q "restored checkpoint" "$D"/logs/server.*.log || fail "no server restored a checkpoint"
grep -h "acknowledged pushes are not in the restored checkpoint" "$D"/logs/server.*.log | sed 's/^/  /'
grep -h "resuming where the servers recorded" "$D"/logs/worker.*.log | sed 's/^/  /'
"$ZPS_BIN/zps-predict" --model "$D/chaos.model" --data "$D/c.test" --out "$D/chaos.pred" --metrics \
    >"$D/chaos.met" 2>/dev/null || fail "predict failed"
ref=$(metric logloss "$D/ref.met"); got=$(metric logloss "$D/chaos.met")
echo "test logloss: undisturbed $ref, under chaos $got"
awk "BEGIN { exit !($got <= $ref * 1.02) }" || fail "chaos run is not within 2% of the undisturbed one"
sleep 0.5
! pgrep -f "$ZPS_BIN/zps-.*$D/c.train" >/dev/null || fail "processes left running"
echo "it_chaos: ok"
