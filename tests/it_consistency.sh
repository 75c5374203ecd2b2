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
elapsed() { sed -n 's/.*finished: [0-9]* rows in \([0-9.]*\)s.*/\1/p' "$1"; }

# ---- ssp:2 with a slow worker: no worker more than 2 clocks ahead ------------------------
JOB="--model lr --train $D/c.train --no-cache --batch 200 --consistency ssp:2 --heartbeat-timeout 10"
start_servers 2 $JOB --num-workers 3
run_workers 3 $JOB --slow-worker 2 --slow-factor 10
for line in $("$ZPS_BIN/it_kv" stats --servers "$SERVERS" | tr ' ' '#'); do
    line=$(echo "$line" | tr '#' ' ')
    ms=$(stat max_staleness "$line"); waits=$(stat pull_waits "$line")
    echo "ssp:2 server $(stat server "$line"): max staleness $ms, pulls held $waits, clocks $(stat clocks "$line")"
    [ "$ms" -le 2 ] || fail "a worker ran $ms clocks ahead under ssp:2"
    [ "$waits" -gt 0 ] || fail "no pull was ever held back: the slow worker did not slow anyone"
done
fast=$(elapsed "$D/w0.log"); slow=$(elapsed "$D/w2.log")
echo "ssp:2: fast worker ${fast}s, slow worker ${slow}s"
awk "BEGIN { exit !($fast > 0.5 * $slow) }" || fail "under ssp the fast worker was not held back"
kill $SERVER_PIDS; wait $SERVER_PIDS 2>/dev/null

# ---- async with the same slow worker: the fast ones do not wait --------------------------
JOB="--model lr --train $D/c.train --no-cache --batch 200"
start_servers 2 $JOB --num-workers 3
run_workers 3 $JOB --slow-worker 2 --slow-factor 10
fast=$(elapsed "$D/w0.log"); slow=$(elapsed "$D/w2.log")
echo "async: fast worker ${fast}s, slow worker ${slow}s"
awk "BEGIN { exit !($slow > 2 * $fast) }" || fail "under async the fast worker waited for the slow one"
kill $SERVER_PIDS; wait $SERVER_PIDS 2>/dev/null

# ---- bsp with 2 workers == 1 worker running the global batch ---------------------------------
# worker 0 reads part-a, worker 1 part-b (files are dealt in name order); the
# reference file interleaves 200-row blocks of both, so its t-th 400-row batch
# is exactly the union of the two workers' t-th batches.
mkdir -p "$D/bsp"; head -n 20000 "$D/c.train" >"$D/bsp/part-a"
sed -n '20001,40000p' "$D/c.train" >"$D/bsp/part-b"
awk -v B=200 'NR == FNR { a[n++] = $0; next } { b[m++] = $0 }
    END { for (i = 0; i < n; i += B) { for (j = i; j < i + B && j < n; j++) print a[j];
                                        for (j = i; j < i + B && j < m; j++) print b[j] } }' \
    "$D/bsp/part-a" "$D/bsp/part-b" >"$D/ref.train"
for opt in "--optimizer sgd --lr 0.001" "--optimizer adagrad --lr 0.05"; do
    JOB="--model lr --no-cache --consistency bsp $opt --epochs 2"
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
sleep 0.5
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
