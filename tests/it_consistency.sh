#!/bin/sh
# Consistency modes: ssp bounds, async stragglers, bsp == sequential global
# batch, and workers that stop answering under ssp.
. "$(dirname "$0")/lib.sh"
D=$TMP
"$ZPS_BIN/zps-datagen" ctr --rows 60000 --test-rows 2000 --features 1000 --nnz 20 --seed 31 \
    --out "$D/c" >/dev/null 2>&1 || fail "datagen failed"

# stat NAME LINE: value of NAME=... in an it_kv stats line
stat() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# run_workers W OPTS...: W workers against $SERVERS, waits for all; fails on error
run_workers() {
    w=$1; shift
    pids=""
    r=0
    while [ $r -lt "$w" ]; do
        "$ZPS_BIN/zps-worker" --servers "$SERVERS" --rank $r --num-workers "$w" "$@" \
            >"$D/w$r.log" 2>&1 &
        pids="$pids $!"
        r=$((r + 1))
    done
    for p in $pids; do wait "$p" || fail "a worker failed: $(tail -3 "$D"/w*.log)"; done
}

# The straggler in the first two parts is not merely slow: it is stopped
# (SIGSTOP) right after it starts, so what the others do while it is stopped
# is decided by the consistency mode alone, never by how fast this machine is.

# start_workers W OPTS...: starts W workers against $SERVERS; sets WPIDS (rank order)
start_workers() {
    w=$1; shift
    WPIDS=""
    r=0
    while [ $r -lt "$w" ]; do
        "$ZPS_BIN/zps-worker" --servers "$SERVERS" --rank $r --num-workers "$w" "$@" \
            >"$D/w$r.log" 2>&1 &
        WPIDS="$WPIDS $!"
        PIDS="$PIDS $!"
        r=$((r + 1))
    done
}
nth() { echo $2 | cut -d' ' -f"$1"; }
# sum_stat NAME: NAME summed over every server's stats line
sum_stat() {
    "$ZPS_BIN/it_kv" stats --servers "$SERVERS" | tr ' ' '\n' | sed -n "s/^$1=//p" |
        awk '{ s += $1 } END { print s + 0 }'
}

# ---- ssp:2, the straggler stopped: the others are held, never more than 2 clocks ahead ----
JOB="--model lr --train $D/c.train --no-cache --batch 200 --consistency ssp:2 --heartbeat-timeout 600"
start_servers 2 $JOB --num-workers 3
start_workers 3 $JOB
w0=$(nth 1 "$WPIDS"); w1=$(nth 2 "$WPIDS"); w2=$(nth 3 "$WPIDS")
kill -STOP "$w2"
t=0
while [ "$(sum_stat pull_waits)" -eq 0 ]; do
    t=$((t + 1)); [ $t -gt 1200 ] && fail "ssp:2: no pull was held in 120 s while a worker was stopped"
    kill -0 "$w0" 2>/dev/null || kill -0 "$w1" 2>/dev/null ||
        fail "ssp:2: the fast workers finished while the third was stopped (nothing held them)"
    sleep 0.1
done
# a held pull stays held while the straggler is stopped: both fast workers are still running
kill -0 "$w0" 2>/dev/null && kill -0 "$w1" 2>/dev/null ||
    fail "ssp:2: a fast worker finished while the third was stopped"
echo "ok: ssp:2 holds the fast workers while the third is stopped ($(sum_stat pull_waits) pulls held)"
kill -CONT "$w2"
for p in $WPIDS; do wait "$p" || fail "a worker failed: $(tail -3 "$D"/w*.log)"; done
for line in $("$ZPS_BIN/it_kv" stats --servers "$SERVERS" | tr ' ' '#'); do
    line=$(echo "$line" | tr '#' ' ')
    ms=$(stat max_staleness "$line")
    echo "ssp:2 server $(stat server "$line"): max staleness $ms, pulls held $(stat pull_waits "$line"), clocks $(stat clocks "$line")"
    [ "$ms" -le 2 ] || fail "a worker ran $ms clocks ahead under ssp:2"
done
kill $SERVER_PIDS; wait $SERVER_PIDS 2>/dev/null

# ---- async, the straggler stopped: the others finish without it ---------------------------
JOB="--model lr --train $D/c.train --no-cache --batch 200"
start_servers 2 $JOB --num-workers 3
start_workers 3 $JOB
w0=$(nth 1 "$WPIDS"); w1=$(nth 2 "$WPIDS"); w2=$(nth 3 "$WPIDS")
kill -STOP "$w2"
wait "$w0" || fail "async: worker 0 failed: $(tail -3 "$D/w0.log")"
wait "$w1" || fail "async: worker 1 failed: $(tail -3 "$D/w1.log")"
kill -0 "$w2" 2>/dev/null || fail "async: the stopped worker is gone"
held=$(sum_stat pull_waits)
[ "$held" -eq 0 ] || fail "async: $held pulls were held"
echo "ok: async: the fast workers finished while the third was stopped, no pull held"
kill -CONT "$w2"
wait "$w2" || fail "async: the resumed worker failed: $(tail -3 "$D/w2.log")"
kill $SERVER_PIDS; wait $SERVER_PIDS 2>/dev/null

# ---- bsp with 2 workers == 1 worker running the global batch ---------------------------------
# worker 0 reads part-a, worker 1 part-b (with --shuffle-buffer 0 files are
# dealt whole in name order and read in file order); the reference file
# interleaves 200-row blocks of both, so its t-th 400-row batch is exactly the
# union of the two workers' t-th batches.
mkdir -p "$D/bsp"; head -n 20000 "$D/c.train" >"$D/bsp/part-a"
sed -n '20001,40000p' "$D/c.train" >"$D/bsp/part-b"
awk -v B=200 'NR == FNR { a[n++] = $0; next } { b[m++] = $0 }
    END { for (i = 0; i < n; i += B) { for (j = i; j < i + B && j < n; j++) print a[j];
                                        for (j = i; j < i + B && j < m; j++) print b[j] } }' \
    "$D/bsp/part-a" "$D/bsp/part-b" >"$D/ref.train"
for opt in "--optimizer sgd --lr 0.001" "--optimizer adagrad --lr 0.05"; do
    JOB="--model lr --no-cache --consistency bsp $opt --epochs 2 --shuffle-buffer 0"
    start_servers 2 $JOB --num-workers 2 --save-model "$D/bsp.model"
    run_workers 2 $JOB --train "$D/bsp" --batch 200
    line=$("$ZPS_BIN/it_kv" stats --servers "$SERVERS" | head -n 1)
    echo "bsp ($opt): server 0 applied $(stat clocks_applied "$line") combined clocks"
    kill $SERVER_PIDS; wait $SERVER_PIDS 2>/dev/null
    start_servers 1 $JOB --num-workers 1 --save-model "$D/ref.model"
    run_workers 1 $JOB --train "$D/ref.train" --batch 400
    kill $SERVER_PIDS; wait $SERVER_PIDS 2>/dev/null
    "$ZPS_BIN/zps-predict" --model "$D/bsp.model" --data "$D/c.test" --out "$D/bsp.pred" >/dev/null 2>&1 ||
        fail "predict bsp"
    "$ZPS_BIN/zps-predict" --model "$D/ref.model" --data "$D/c.test" --out "$D/ref.pred" >/dev/null 2>&1 ||
        fail "predict ref"
    diff=$(paste "$D/bsp.pred" "$D/ref.pred" | awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d } END { printf "%.3g", m }')
    echo "bsp 2 workers vs 1 worker with the global batch ($opt): max |p difference| $diff"
    awk "BEGIN { exit !($diff < 1e-4) }" || fail "bsp differs from the sequential global batch by $diff"
    cmp -s "$D/bsp.pred" "$D/ref.pred" && echo "  (bit-identical)"
done

# ---- ssp: a worker that stops answering is dropped, the others finish; it rejoins ------------
JOB="--model lr --train $D/c.train --no-cache --batch 100 --epochs 3 --consistency ssp:1 --heartbeat-timeout 1"
start_servers 1 $JOB --num-workers 3
pids=""
for r in 0 1 2; do
    "$ZPS_BIN/zps-worker" --servers "$SERVERS" --rank $r --num-workers 3 $JOB \
        --slow-worker 2 --slow-factor 20 >"$D/w$r.log" 2>&1 &
    pids="$pids $!"
    [ $r = 2 ] && stopped=$!
done
kill -STOP "$stopped"
for p in $pids; do
    [ "$p" = "$stopped" ] && continue
    wait "$p" || fail "a live worker failed while another was stopped"
done
grep -q "dropped from the clock" "$TMP/server.0.log" || fail "the silent worker was not dropped"
echo "ok: a silent worker was dropped and the others finished"
kill -CONT "$stopped"
wait "$stopped" || fail "the resumed worker failed: $(tail -3 "$D/w2.log")"
grep -q "rejoined the clock" "$TMP/server.0.log" || fail "the resumed worker did not rejoin"
echo "ok: the resumed worker rejoined and finished"
echo "it_consistency: ok"
