#!/bin/sh
# zps-server --exit-when-done (what `zps-launch --mpi` and `--slurm` rely on):
#   1. forged "done" messages (bin/zps-hostile --attacks done: without a
#      HELLO, or as another rank than the HELLO) are not counted, and the
#      server keeps serving;
#   2. async, 1 server x 2 workers: after worker 0 has finished the server
#      still runs (1 of 2); after worker 1 it saves the model and exits 0 by
#      itself; a second done from the same rank is not counted twice;
#   3. bsp, 2 servers x 2 workers: both servers stop by themselves, the
#      model is complete.
. "$(dirname "$0")/lib.sh"
D=$TMP

"$ZPS_BIN/zps-datagen" ctr --rows 20000 --test-rows 2000 --features 500 --nnz 20 --seed 3 \
    --out "$D/ctr" >"$D/datagen.log" 2>&1 || fail "datagen failed: $(cat "$D/datagen.log")"
OPTS="--model lr --optimizer ftrl --lr 0.1 --epochs 1"

# ---- 1. forged done ------------------------------------------------------------------------
start_servers 1 --num-workers 2 --exit-when-done $OPTS --save-model "$D/m1"
SP=$SERVER_PIDS
"$ZPS_BIN/zps-hostile" --server "$SERVERS" --log "$TMP/server.0.log" --attacks done --rank-base 0 \
    >"$D/hostile.out" 2>&1 || fail "zps-hostile --attacks done: $(cat "$D/hostile.out")"
grep -q "^attack done: DEFENDED" "$D/hostile.out" || fail "forged done: $(cat "$D/hostile.out")"
kill -0 $SP 2>/dev/null || fail "the server stopped after forged done messages"
grep -q "not counted" "$TMP/server.0.log" || fail "no 'not counted' line in the server log"
echo "ok: forged done messages are not counted ($(sed -n 's/^attack done: DEFENDED: //p' "$D/hostile.out"))"

# ---- 2. async: the server waits for every worker, then stops by itself -------------------------
"$ZPS_BIN/zps-worker" --servers "$SERVERS" --rank 0 --num-workers 2 $OPTS --train "$D/ctr.train" \
    >/dev/null 2>"$D/w0.log" || fail "worker 0 failed: $(tail -5 "$D/w0.log")"
sleep 0.5
kill -0 $SP 2>/dev/null || fail "the server stopped with one of two workers done"
grep -q "worker 0 at 127.0.0.1 is done (1 of 2 workers)" "$TMP/server.0.log" ||
    fail "no 'worker 0 ... is done (1 of 2 workers)': $(tail -5 "$TMP/server.0.log")"
# worker 0 again (a restarted process): still 1 of 2
"$ZPS_BIN/zps-worker" --servers "$SERVERS" --rank 0 --num-workers 2 $OPTS --train "$D/ctr.test" \
    >/dev/null 2>"$D/w0b.log" || fail "worker 0 (again) failed: $(tail -5 "$D/w0b.log")"
sleep 0.5
kill -0 $SP 2>/dev/null || fail "a second done from worker 0 stopped the server"
[ "$(grep -c ' is done (' "$TMP/server.0.log")" -eq 1 ] || fail "worker 0 was counted twice"
echo "ok: one of two workers done: the server goes on (a second done from rank 0 is not counted)"
"$ZPS_BIN/zps-worker" --servers "$SERVERS" --rank 1 --num-workers 2 $OPTS --train "$D/ctr.train" \
    >/dev/null 2>"$D/w1.log" || fail "worker 1 failed: $(tail -5 "$D/w1.log")"
wait_exit $SP 10; rc=$?
[ "$rc" = 0 ] || fail "the server exited $rc after every worker was done"
grep -q "all 2 workers are done: stopping (--exit-when-done)" "$TMP/server.0.log" ||
    fail "no 'all 2 workers are done' line: $(tail -5 "$TMP/server.0.log")"
[ -f "$D/m1/manifest" ] && [ -f "$D/m1/shard-0-of-1.bin" ] || fail "the server did not save the model"
echo "ok: async: the server saved the model and exited 0 once both workers were done"

# ---- 3. bsp, 2 x 2 ------------------------------------------------------------------------------
start_servers 2 --num-workers 2 --exit-when-done $OPTS --consistency bsp --save-model "$D/m3"
P3=$SERVER_PIDS
for r in 0 1; do
    "$ZPS_BIN/zps-worker" --servers "$SERVERS" --rank $r --num-workers 2 $OPTS --consistency bsp \
        --train "$D/ctr.train" >/dev/null 2>"$D/b$r.log" &
    eval "W$r=\$!"
done
wait_exit $W0 60; r0=$?
wait_exit $W1 60; r1=$?
[ $r0 = 0 ] && [ $r1 = 0 ] || fail "a bsp worker failed: $(tail -n 3 "$D/b0.log" "$D/b1.log")"
for p in $P3; do
    wait_exit $p 10; rc=$?
    [ "$rc" = 0 ] || fail "a bsp server exited $rc"
done
[ -f "$D/m3/shard-0-of-2.bin" ] && [ -f "$D/m3/shard-1-of-2.bin" ] || fail "bsp: the model is incomplete"
"$ZPS_BIN/zps-predict" --model "$D/m3" --data "$D/ctr.test" --out "$D/m3.pred" --metrics >"$D/m3.metrics" ||
    fail "zps-predict failed on the bsp model"
echo "ok: bsp 2x2: both servers stopped by themselves and saved a complete model"
echo "it_done: ok"
