#!/bin/sh
# Fault tolerance without the launcher: a server killed with -9 and restarted
# from its checkpoint; exactly-once accounting; corrupt checkpoints; an
# unusable checkpoint directory.
. "$(dirname "$0")/lib.sh"
D=$TMP
"$ZPS_BIN/zps-datagen" ctr --rows 100000 --test-rows 10000 --features 1000 --nnz 40 --seed 51 \
    --out "$D/c" >/dev/null 2>&1 || fail "datagen failed"
stat() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
metric() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' "$2"; }
JOB="--model lr --optimizer ftrl --lr 0.1 --seed 3"
# worker 0 takes twice as long per batch, so the job outlasts the kill below
# on a fast machine too (it changes no arithmetic)
WOPT="--train $D/c.train --epochs 10 --batch 200 --cache-dir $D --server-timeout 60 --slow-worker 0 --slow-factor 2"

# ---- undisturbed reference ----------------------------------------------------------------
start_servers 2 $JOB --save-model "$D/ref.model"
"$ZPS_BIN/zps-worker" --servers "$SERVERS" $JOB $WOPT >"$D/ref.log" 2>&1 || fail "reference run failed"
kill $SERVER_PIDS; wait $SERVER_PIDS
"$ZPS_BIN/zps-predict" --model "$D/ref.model" --data "$D/c.test" --out "$D/ref.pred" --metrics \
    >"$D/ref.met" 2>/dev/null || fail "predict failed"
ref=$(metric logloss "$D/ref.met")

# ---- kill -9 server 1 mid-job, restart it from its checkpoint on the same port ------------------
CK="--checkpoint-dir $D/ck --checkpoint-every 0.3"
start_servers 2 $JOB $CK --save-model "$D/f.model"
s1=${SERVERS#*,}; port=${s1##*:}; pid1=${SERVER_PIDS##* }
"$ZPS_BIN/zps-worker" --servers "$SERVERS" $JOB $CK $WOPT >"$D/f.log" 2>&1 &
wp=$!
t=0   # kill once the worker is well into the job (epoch 3 of 10)
while ! grep -q "epoch 3/10 done" "$D/f.log" && [ $t -lt 600 ]; do sleep 0.05; t=$((t + 1)); done
kill -9 "$pid1"
wait "$pid1" 2>/dev/null
sleep 3   # longer than the 2 s retry interval: the worker retries (and says so) meanwhile
"$ZPS_BIN/zps-server" --bind "tcp://127.0.0.1:$port" --rank 1 --num-servers 2 $JOB $CK \
    --save-model "$D/f.model" --restore >"$D/restart.out" 2>"$D/server.1.restart.log" &
rp=$!
PIDS="$PIDS $rp"
wait "$wp" || fail "the worker did not survive the server's death: $(tail -5 "$D/f.log")"
grep -q "waiting for server 1 at tcp://127.0.0.1:$port" "$D/f.log" || fail "the worker never said it was waiting for server 1"
grep -q "restored checkpoint" "$D/server.1.restart.log" || fail "the restarted server did not restore"
line=$("$ZPS_BIN/it_kv" stats --servers "$SERVERS" | sed -n 2p)
acked=$(sed -n 's/.*pushes acknowledged per server: [0-9]*,\([0-9]*\).*/\1/p' "$D/f.log")
r=$(stat restored_pushes "$line"); l=$(stat lost_pushes "$line"); a=$(stat applied_pushes "$line")
echo "server 1: checkpoint held $r pushes, $a applied after the restart, $(stat duplicate_pushes "$line") duplicates ignored, server's lost estimate $l; the worker saw $acked acknowledgements"
if grep -q "server 1 at tcp://127.0.0.1:$port restarted (a new process): resending" "$D/f.log"; then
    # The server says who it is (a nonce): the worker saw the restart and resent every push it
    # held (unacknowledged, or acknowledged but not in a checkpoint).  Nothing acknowledged is
    # lost: each push is in the restored checkpoint or applied after the restart, once.
    res=$(sed -n 's/.*pushes: [0-9]* acknowledged, [0-9]* retried, \([0-9]*\) resent after 1 server restart.*/\1/p' "$D/f.log")
    [ -n "$res" ] || fail "the worker's finished line does not count one restart"
    [ $((r + a)) -eq "$acked" ] || fail "exactly once across the crash: $r in the checkpoint + $a applied after the restart != $acked acknowledged pushes"
    echo "ok: the worker resent $res held pushes after the restart; $r + $a = $acked, nothing acknowledged was lost"
else
    # A server that predates durable_seq: what it acknowledged after its last checkpoint is lost,
    # and counted.
    [ $((r + l + a)) -eq "$acked" ] || fail "accounting: $r + $l + $a != $acked acknowledged pushes"
    grep -q "$l acknowledged pushes are not in the restored checkpoint" "$D/server.1.restart.log" ||
        [ "$l" -eq 0 ] || fail "the lost count is not in the server's log"
fi
kill $SERVER_PIDS $rp 2>/dev/null; wait $SERVER_PIDS $rp 2>/dev/null
"$ZPS_BIN/zps-predict" --model "$D/f.model" --data "$D/c.test" --out "$D/f.pred" --metrics \
    >"$D/f.met" 2>/dev/null || fail "predict failed"
got=$(metric logloss "$D/f.met")
echo "test logloss: undisturbed $ref, with a server killed and restored $got"
awk "BEGIN { exit !($got <= $ref * 1.02) }" || fail "logloss $got is not within 2% of $ref"

# ---- a torn or corrupt newest checkpoint: restore falls back to the previous one ---------
ls "$D/ck"/ckpt-0-of-2-*.zck >/dev/null 2>&1 || fail "no checkpoints of server 0"
for damage in truncate flip; do
    newest=$(ls "$D/ck"/ckpt-0-of-2-*.zck | sort | tail -n 1)
    prev=$(ls "$D/ck"/ckpt-0-of-2-*.zck | sort | tail -n 2 | head -n 1)
    size=$(stat -c %s "$newest")
    if [ $damage = truncate ]; then
        truncate -s $((size / 2)) "$newest"
    else
        printf '\377' | dd of="$newest" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
    fi
    "$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 --rank 0 --num-servers 2 $JOB $CK --restore \
        --ready-file "$D/rr" >/dev/null 2>"$D/rr.log" &
    p=$!
    t=0; while [ ! -s "$D/rr" ] && [ $t -lt 100 ]; do sleep 0.1; t=$((t + 1)); done
    kill $p; wait $p
    rm -f "$D/rr"
    grep -q "$(basename "$newest") is unusable" "$D/rr.log" || fail "$damage: the damaged checkpoint was not reported"
    pc=$(basename "$prev" .zck); pc=${pc##*-}; pc=$(echo "$pc" | sed 's/^0*//')
    grep -q "restored checkpoint $pc:" "$D/rr.log" || fail "$damage: did not fall back to checkpoint $pc: $(cat "$D/rr.log")"
    echo "ok: $damage newest checkpoint -> reported, restored the previous one ($pc)"
    rm -f "$newest"   # keep the test's next round on intact files
done

# ---- retention cap: past --max-retained-mb a worker waits for checkpoints ---------------------------
# Servers that report durable_seq (they send a nonce) release a push only once a checkpoint holds
# it; with a 0.25 MiB cap the worker must wait for checkpoints (and probe the servers), its held
# bytes never pass the cap by more than one push (< 128 KiB here: 200 rows x 40 features), and
# every push is applied exactly once.
if grep -q "restarted (a new process)" "$D/f.log"; then
    CK2="--checkpoint-dir $D/ck2 --checkpoint-every 0.3"
    start_servers 2 $JOB $CK2
    "$ZPS_BIN/zps-worker" --servers "$SERVERS" $JOB $CK2 --train "$D/c.train" --epochs 1 \
        --batch 200 --cache-dir "$D" --max-retained-mb 0.25 >"$D/cap.log" 2>&1 ||
        fail "the worker with a retention cap failed: $(tail -3 "$D/cap.log")"
    fin=$(grep "pushes: .* acknowledged" "$D/cap.log")
    waits=$(echo "$fin" | sed -n 's/.*; \([0-9]*\) waits for a checkpoint.*/\1/p')
    peak=$(echo "$fin" | sed -n 's/.*peak [0-9.]* MB (\([0-9]*\) bytes).*/\1/p')
    probes=$(echo "$fin" | sed -n 's/.* \([0-9]*\) probes;.*/\1/p')
    [ "${waits:-0}" -ge 1 ] || fail "the worker never waited for a checkpoint: $fin"
    [ "$peak" -le $((262144 + 131072)) ] || fail "held bytes peaked at $peak, over the cap plus one push"
    grep -q "pushes held for durability (--max-retained-mb 0.25): waiting" "$D/cap.log" ||
        fail "the wait was not logged"
    acks=$(sed -n 's/.*pushes acknowledged per server: \([0-9,]*\).*/\1/p' "$D/cap.log")
    "$ZPS_BIN/it_kv" stats --servers "$SERVERS" >"$D/cap.stats"
    i=0
    for a in $(echo "$acks" | tr ',' ' '); do
        line=$(sed -n "$((i + 1))p" "$D/cap.stats")
        [ "$(stat applied_pushes "$line")" -eq "$a" ] ||
            fail "server $i applied $(stat applied_pushes "$line") pushes, the worker saw $a acknowledged"
        i=$((i + 1))
    done
    kill $SERVER_PIDS; wait $SERVER_PIDS 2>/dev/null
    echo "ok: retention cap 0.25 MiB: $waits waits for a checkpoint, $probes probes, peak $peak bytes; applied = acknowledged ($acks)"
fi

# ---- an unusable checkpoint directory is a clear error; serving goes on ------------------------
"$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 $JOB --checkpoint-dir /proc/zps-no-such-dir \
    --checkpoint-every 0.2 --ready-file "$D/bad" >/dev/null 2>"$D/bad.log" &
p=$!
t=0   # the first checkpoint is due 0.2 s after start: wait for its error, however long that takes
while ! grep -q "cannot create checkpoint directory" "$D/bad.log" && [ $t -lt 600 ]; do sleep 0.1; t=$((t + 1)); done
kill -0 $p 2>/dev/null || fail "the server stopped serving after the checkpoint error"
kill $p; wait $p
grep -q "cannot create checkpoint directory /proc/zps-no-such-dir" "$D/bad.log" || fail "no clear error for an unusable checkpoint directory: $(cat "$D/bad.log")"
echo "ok: an unusable checkpoint directory is reported and the server keeps serving"
echo "it_fault: ok"
