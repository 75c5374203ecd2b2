#!/bin/sh
# A hostile client hammers server 0 during a training job: random bytes,
# wrong versions, huge counts, truncated and oversized frames, NaN/inf
# gradients, and a flood of tiny requests whose replies it never reads.  The
# job must still reach its quality bar and the server's memory stay bounded.
. "$(dirname "$0")/lib.sh"
D=$TMP
metric() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' "$2"; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
"$ZPS_BIN/zps-datagen" ctr --rows 200000 --test-rows 20000 --features 1000 --nnz 40 --seed 71 \
    --out "$D/c" >/dev/null 2>&1 || fail "datagen failed"
JOB="--model lr --optimizer ftrl --lr 0.1"
start_servers 2 $JOB --max-msg-mb 8 --save-model "$D/m"
pid0=${SERVER_PIDS# }; pid0=${pid0%% *}
s0=${SERVERS%%,*}
# warm-up job so the table exists, then measure memory
"$ZPS_BIN/zps-worker" --servers "$SERVERS" $JOB --train "$D/c.test" --no-cache >/dev/null 2>&1 || fail "warm-up failed"
before=$(rss_kb "$pid0")
t0=$(date +%s)
"$ZPS_BIN/it_kv" rogue --servers "$s0" --rounds 12 --seed 5 >"$D/rogue.out" 2>&1 &
rp=$!
PIDS="$PIDS $rp"
pids=""
for r in 0 1; do
    "$ZPS_BIN/zps-worker" --servers "$SERVERS" --rank $r --num-workers 2 $JOB --train "$D/c.train" \
        --epochs 3 --cache-dir "$D" >"$D/w$r.log" 2>&1 &
    pids="$pids $!"
done
for p in $pids; do wait "$p" || fail "a worker failed under attack"; done
wait $rp
cat "$D/rogue.out"
after=$(rss_kb "$pid0")
kill -0 "$pid0" || fail "server 0 died"
grep -q "rejected request" "$TMP/server.0.log" || fail "the server logged no rejected request"
# rate limit: about one line per second, not one per rejected message (the
# bound follows from how long the attack lasted, however slow the machine)
secs=$(( $(date +%s) - t0 + 1 ))
nlines=$(grep -c "rejected request" "$TMP/server.0.log")
[ "$nlines" -le $((2 * secs + 5)) ] || fail "rejections were not rate-limited ($nlines log lines in $secs s)"
echo "server 0 RSS: $before kB before the attack, $after kB after; $(grep -c 'rejected request' "$TMP/server.0.log") log lines for the rejections"
[ "$after" -lt $((before * 2 + 200000)) ] || fail "server memory grew from $before kB to $after kB"
kill $SERVER_PIDS; wait $SERVER_PIDS
"$ZPS_BIN/zps-predict" --model "$D/m" --data "$D/c.test" --out "$D/p" --metrics >"$D/met" 2>/dev/null ||
    fail "predict failed"
auc=$(metric auc "$D/met"); tauc=$(sed -n 's/^test_auc=//p' "$D/c.truth")
echo "under attack: test AUC $auc, ground truth $tauc"
awk "BEGIN { exit !($auc >= $tauc - 0.01) }" || fail "the attack cost the model its quality"
echo "it_rogue: ok"
