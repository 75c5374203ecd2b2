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
mkdir -p "$D/logs"
$LAUNCH --servers 2 --workers 3 --restart-servers 3 --restart-workers 3 --timeout 300 \
    --log-dir "$D/logs" --save-model "$D/chaos.model" -- $JOB \
    --checkpoint-dir "$D/ck" --checkpoint-every 0.5 >"$D/chaos.out" 2>&1 &
lp=$!
PIDS="$PIDS $lp"
pid_of() { pgrep -f "$ZPS_BIN/$1 .*--rank $2 .*$D/c.train" | head -n 1; }
# Every step is driven by the job's own progress, never by the clock: a kill
# happens once the workers have finished N epochs between them (counted in
# their logs), and the next one only after the launcher reported the restart
# of the last, so a fast machine cannot finish the job before the kills and a
# slow one cannot pile them up.
epochs_done() { cat "$D"/logs/worker.*.log 2>/dev/null | grep -c "epoch [0-9]*/16 done"; }
restarts() { grep -c "restarting it" "$D/chaos.out"; }
until_true() { # until_true WHAT CMD...: polls CMD for up to 240 s
    what=$1; shift; t=0
    until "$@"; do
        t=$((t + 1)); [ $t -gt 2400 ] && fail "chaos: waited 240 s for $what"
        kill -0 "$lp" 2>/dev/null || fail "chaos: the job ended while waiting for $what: $(tail -5 "$D/chaos.out")"
        sleep 0.1
    done
}
at_epochs() { [ "$(epochs_done)" -ge "$1" ]; }
restarts_ge() { [ "$(restarts)" -ge "$1" ]; }
found() { p=$(pid_of "$1" "$2"); [ -n "$p" ]; }
kill_one() { # kill_one BIN RANK
    until_true "$1 $2 to run" found "$1" "$2"
    kill -9 "$p" && echo "chaos: killed $1 $2 (pid $p) after $(epochs_done) worker epochs"
}
until_true "2 worker epochs" at_epochs 2
kill_one zps-worker $((RANDOM % 3))
until_true "the first restart" restarts_ge 1
until_true "6 worker epochs" at_epochs 6
s=$((RANDOM % 2))
ckpt_written() { grep -q "checkpoint [0-9]* written" "$D/logs/server.$s.log"; }
until_true "a checkpoint of server $s" ckpt_written
kill_one zps-server $s
until_true "the second restart" restarts_ge 2
until_true "10 worker epochs" at_epochs 10
w=$((RANDOM % 3)); s=$((RANDOM % 2))
until_true "worker $w and server $s to run" found zps-worker $w
p1=$p
until_true "server $s to run" found zps-server $s
kill -9 "$p1" "$p" && echo "chaos: killed worker $w and server $s after $(epochs_done) worker epochs"
wait $lp || fail "the job did not survive: $(grep launcher "$D/chaos.out" | tail -8)"
grep "launcher:" "$D/chaos.out" | grep -E "died|back at|restarting" | sed 's/^/  /'
[ "$(restarts)" -ge 4 ] || fail "4 processes were killed but $(restarts) restarts were reported"
grep -q "restored checkpoint" "$D"/logs/server.*.log || fail "no server restored a checkpoint"
grep -h "acknowledged pushes are not in the restored checkpoint" "$D"/logs/server.*.log | sed 's/^/  /'
grep -h "resuming where the servers recorded" "$D"/logs/worker.*.log | sed 's/^/  /'
"$ZPS_BIN/zps-predict" --model "$D/chaos.model" --data "$D/c.test" --out "$D/chaos.pred" --metrics \
    >"$D/chaos.met" 2>/dev/null || fail "predict failed"
ref=$(metric logloss "$D/ref.met"); got=$(metric logloss "$D/chaos.met")
echo "test logloss: undisturbed $ref, under chaos $got"
awk "BEGIN { exit !($got <= $ref * 1.02) }" || fail "chaos run is not within 2% of the undisturbed one"
t=0
while pgrep -f "$ZPS_BIN/zps-.*$D/c.train" >/dev/null && [ $t -lt 100 ]; do sleep 0.1; t=$((t + 1)); done
! pgrep -f "$ZPS_BIN/zps-.*$D/c.train" >/dev/null || fail "processes left running"
echo "it_chaos: ok"
