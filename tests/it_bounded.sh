#!/bin/sh
# Bounded memory (zps-server --evict, --expire-after; with --admit):
#   1. eviction on a raw table: --max-keys 100 --evict while 2000 fresh
#      keys and 5 hot keys are pushed: every push is accepted, the table
#      never holds more than 100 keys, the counters are exact (evicted =
#      inserted - stored), and the hot keys, pushed in every push, hold
#      every one of their updates; bad --expire-after values and --evict
#      with --consistency bsp are refused;
#   2. expiry: --expire-after 1: keys pushed once are deleted within a few
#      seconds of the job's running time (counted), pull their initial value,
#      and are new keys when pushed again; stamps survive a checkpoint and
#      --restore (nothing expired by the time the server was down); ftrl
#      with --evict stores n as uf16 and its checkpoint does not restore
#      into --accum f32;
#   3. a training job on Zipf CTR data over 2^30 ids: --admit count:2 and
#      --max-keys below the distinct ids of the data (--evict) against the
#      unbounded run: both finish (a push that could not fit under the cap
#      would be refused and fail the job: the cap is never exceeded), the
#      bounded server evicted keys and stores at most its cap, and the test
#      logloss is within 0.5% of the unbounded run's.
. "$(dirname "$0")/lib.sh"
D=$TMP
CTL="$ZPS_BIN/zps-ctl"
check() { if awk "BEGIN { exit !($2) }"; then echo "ok: $1"; else fail "$1 ($2)"; fi; }
stat() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
stats() { $CTL --servers "$SERVERS" stats | head -1; }

# ---- 1. eviction, raw table -----------------------------------------------------------
start_servers 1 --table-dim 1 --optimizer sgd --lr 1 --max-keys 100 --evict
awk 'BEGIN { for (l = 0; l < 1000; l++) { s = ""; for (h = 1; h <= 5; h++) s = s h ":1 ";
             print s (1000 + 2 * l) ":1 " (1001 + 2 * l) ":1" } }' >"$D/evict.txt"
$CTL --servers "$SERVERS" --rank 1 push --file "$D/evict.txt" --window 1 >"$D/evict.out" 2>"$D/evict.log" ||
    fail "pushes refused with --evict: $(tail -3 "$D/evict.log")"
grep -q "^pushed 1000 lines" "$D/evict.out" || fail "not every push acknowledged: $(cat "$D/evict.out")"
line=$(stats)
[ "$(stat keys_stored "$line")" = 100 ] || fail "stored keys not at the cap of 100: $line"
[ "$(stat evicted_keys "$line")" = 1905 ] || fail "2005 keys through a 100-key table: 1905 evictions expected: $line"
for h in 1 2 3 4 5; do
    v=$($CTL --servers "$SERVERS" pull $h | awk '{ print $2 + 0 }')
    [ "$v" = -1000 ] || fail "hot key $h holds $v, -1000 expected (every update kept)"
done
echo "ok: --max-keys 100 --evict: 1000 pushes of 2005 keys accepted, 100 stored, 1905 evicted, hot keys exact"
kill -TERM $SERVER_PIDS; wait_exit $SERVER_PIDS 10 || fail "server did not exit 0"
refused() { # PATTERN args...
    pat=$1; shift
    if "$ZPS_BIN/zps-server" --table-dim 1 "$@" >"$D/bad.out" 2>&1; then fail "accepted: $*"; fi
    grep -q -- "$pat" "$D/bad.out" || fail "$*: unclear message: $(cat "$D/bad.out")"
}
refused "invalid value '0' for --expire-after" --expire-after 0
refused "invalid value 'soon' for --expire-after" --expire-after soon
refused "not supported with --consistency bsp" --evict --max-keys 10 --consistency bsp --num-workers 1
echo "ok: bad --expire-after values and --evict with --consistency bsp: refused (replicated jobs: tests/it_replica_bounded.sh)"

# ---- 2. expiry ------------------------------------------------------------------------
start_servers 1 --table-dim 1 --optimizer sgd --lr 1 --expire-after 1
awk 'BEGIN { for (k = 1; k <= 500; k++) print k ":1" }' >"$D/once.txt"
ms() { echo $(($(date +%s%N) / 1000000)); }
sent=$(ms) # before the push: its rows' stamps are later, so they must live over 1000 ms from here
$CTL --servers "$SERVERS" --rank 1 push --file "$D/once.txt" >/dev/null || fail "push failed"
t=0 seen=0
while :; do
    n=$(stat keys_stored "$(stats)") at=$(($(ms) - sent)) # the answer came before `at`
    [ "$n" = 500 ] || [ $at -gt 1000 ] || fail "keys expired early: $n of 500 left $at ms after the push was sent"
    [ $at -le 1000 ] && seen=$((seen + 1))
    [ "$n" = 0 ] && break
    t=$((t + 1)); [ $t -gt 150 ] && fail "keys not expired after 15 s: $(stats)"
    sleep 0.1
done
gone=$(($(ms) - sent))
[ $gone -gt 1000 ] || fail "keys expired early: all gone $gone ms after the push was sent"
line=$(stats)
[ "$(stat expired_keys "$line")" = 500 ] || fail "500 expired keys expected: $line"
[ "$($CTL --servers "$SERVERS" pull 7 | awk '{ print $2 + 0 }')" = 0 ] || fail "an expired key does not pull its initial value"
printf '7:2\n' >"$D/seven.txt"
$CTL --servers "$SERVERS" --rank 2 push --file "$D/seven.txt" >/dev/null 2>&1 || fail "push after expiry failed"
[ "$($CTL --servers "$SERVERS" pull 7 | awk '{ print $2 + 0 }')" = -2 ] || fail "an expired key pushed again is not a new key"
echo "ok: --expire-after 1: 500 keys gone by $gone ms after the push was sent (all 500 there in $seen looks before 1000 ms), counted; an expired key is new again"
kill -TERM $SERVER_PIDS; wait_exit $SERVER_PIDS 10 || fail "server did not exit 0"
# stamps travel in checkpoints: a server down longer than the expiry keeps its rows
start_servers 1 --table-dim 1 --optimizer sgd --lr 1 --expire-after 8 --checkpoint-dir "$D/ck"
$CTL --servers "$SERVERS" --rank 1 push --file "$D/once.txt" >/dev/null || fail "push failed"
kill -TERM $SERVER_PIDS; wait_exit $SERVER_PIDS 10 || fail "server did not exit 0"
sleep 9
start_servers 1 --table-dim 1 --optimizer sgd --lr 1 --expire-after 8 --checkpoint-dir "$D/ck" --restore
[ "$(stat keys_stored "$(stats)")" = 500 ] || fail "rows expired by the time the server was down: $(stats)"
t=0
while [ "$(stat keys_stored "$(stats)")" != 0 ]; do
    t=$((t + 1)); [ $t -gt 300 ] && fail "restored keys not expired after 30 s: $(stats)"
    sleep 0.1
done
echo "ok: a checkpoint keeps the rows' stamps: nothing expired while the server was down, all after"
kill -TERM $SERVER_PIDS; wait_exit $SERVER_PIDS 10 || fail "server did not exit 0"
# ftrl with --evict stores n as uf16 (16-byte entries with the stamp): its
# checkpoint restores with the same options, and is refused (not misread)
# by a server told to store n as a float
FT="--table-dim 1 --optimizer ftrl --lr 0.1 --max-keys 1000 --evict --checkpoint-dir $D/ck2"
start_servers 1 $FT
grep -q "n stored as uf16" "$TMP/server.0.log" || fail "ftrl with --evict does not store n as uf16: $(head -2 "$TMP/server.0.log")"
awk 'BEGIN { for (k = 1; k <= 300; k++) printf "%d:%g\n", k, (k % 7) / 10 - 0.3 }' >"$D/ftrl.txt"
$CTL --servers "$SERVERS" --rank 1 push --file "$D/ftrl.txt" >/dev/null || fail "push failed"
$CTL --servers "$SERVERS" pull 1,2,3,4,5 >"$D/before.txt" || fail "pull failed"
[ "$(awk '$2 != 0' "$D/before.txt" | wc -l)" = 4 ] || fail "ftrl pulls: 4 non-zero weights expected: $(cat "$D/before.txt")"
kill -TERM $SERVER_PIDS; wait_exit $SERVER_PIDS 10 || fail "server did not exit 0"
start_servers 1 $FT --restore
$CTL --servers "$SERVERS" pull 1,2,3,4,5 >"$D/after.txt" || fail "pull failed"
cmp -s "$D/before.txt" "$D/after.txt" || fail "uf16 rows changed across a checkpoint: $(cat "$D/before.txt") / $(cat "$D/after.txt")"
kill -TERM $SERVER_PIDS; wait_exit $SERVER_PIDS 10 || fail "server did not exit 0"
if "$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 $FT --restore --accum f32 >"$D/f32.out" 2>&1; then
    fail "a uf16 checkpoint restored into --accum f32"
fi
grep -q "accum=uf16" "$D/f32.out" || fail "uf16 checkpoint into --accum f32: unclear message: $(tail -2 "$D/f32.out")"
echo "ok: --evict ftrl stores n as uf16; its checkpoint restores the same weights, and is refused by --accum f32"

[ "${BOUNDED_JOB:-1}" = 1 ] || { echo "it_bounded: ok (without the training job)"; exit 0; }

# ---- 3. a job on Zipf CTR data over 2^30 ids ---------------------------------------------
"$ZPS_BIN/zps-datagen" ctr --rows ${BOUNDED_ROWS:-200000} --test-rows 20000 --features 1073741824 --nnz 20 \
    --zipf 1.1 --seed 23 --out "$D/ctr" >"$D/datagen.log" 2>&1 || fail "datagen failed"
distinct=$(awk '{for (i = 2; i <= NF; i++) { split($i, a, ":"); if (!(a[1] in s)) { s[a[1]] = 1; n++ } } } END { print n }' "$D/ctr.train")
OPTS="--model lr --optimizer ftrl --lr 0.1 --epochs 1 --seed 5"
run() { # NAME [server options]: one server, one worker; sets LL, LINE
    name=$1; shift
    SRV_TAG=$name. start_servers 1 $OPTS "$@"
    "$ZPS_BIN/zps-worker" --servers "$SERVERS" --rank 0 --num-workers 1 $OPTS --no-cache \
        --train "$D/ctr.train" --test "$D/ctr.test" >"$D/$name.out" 2>"$D/$name.log" ||
        fail "$name job failed: $(tail -5 "$D/$name.log")"
    LL=$(grep -h "test: logloss" "$D/$name.out" "$D/$name.log" | tail -1 | sed 's/.*test: logloss \([0-9.]*\).*/\1/')
    [ -n "$LL" ] || fail "$name: no test logloss"
    LINE=$(stats)
    kill -TERM $SERVER_PIDS; wait_exit $SERVER_PIDS 10 || fail "$name: server did not exit 0"
}
run full
ll_full=$LL keys_full=$(stat keys_stored "$LINE") bytes_full=$(stat bytes_used "$LINE")
# count:2 alone stores about a seventh of the ids here (those seen twice):
# a cap of a tenth makes eviction work all along the pass
CAP=$((distinct / 10))
run bounded --admit count:2 --admit-ids 4194304 --max-keys $CAP --evict
ll_b=$LL keys_b=$(stat keys_stored "$LINE")
echo "distinct train ids $distinct (of 2^30); unbounded: $keys_full keys, test logloss $ll_full;" \
     "count:2 and --max-keys $CAP: $keys_b keys, $(stat evicted_keys "$LINE") evicted," \
     "$(stat admission_rejected_keys "$LINE") key updates not admitted, test logloss $ll_b"
check "the bounded server stores at most its cap ($keys_b <= $CAP)" "$keys_b <= $CAP"
check "the bounded run evicted keys" "$(stat evicted_keys "$LINE") > 0"
check "the bounded tables take less memory ($(stat bytes_used "$LINE") < $bytes_full bytes)" "$(stat bytes_used "$LINE") < $bytes_full"
check "test logloss within 0.5% of the unbounded run ($ll_b vs $ll_full)" "$ll_b <= $ll_full * 1.005"
echo "it_bounded: ok"
