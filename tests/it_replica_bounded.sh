#!/bin/sh
# Bounded memory in a replicated job (--coordinator): admission, expiry and
# eviction on every replica, and across a server's rejoin.  2 servers, 2
# replicas (every key on both), sgd with lr 1 and gradients of 1 (a stored
# weight is minus the number of its stored updates), --admit count:2,
# --expire-after 60, --max-keys 600 --evict:
#   1. keys 1..300 pushed twice (stored from the second push: -1), keys
#      10001..10200 once (counted, not stored): each replica decides the
#      same, and counts 500 key updates not admitted;
#   2. server 1 is killed with -9, removed, started afresh: it joins,
#      copying from server 0 its rows (stamps included) and its admission
#      counts; the copied rows keep their ages (the clock of a replicated
#      job is the wall clock: read on another server's running time they
#      would be 2^16 quanta off, and expire at once): 2 s later the joiner
#      still holds all 300, each at -1;
#   3. keys 10001..10200 pushed a second time: stored on both replicas, the
#      joiner included (it counted their first push through the donor's
#      counts; counting from zero it would drop them);
#   4. keys 20001..20300 pushed twice: 800 keys admitted, over the cap of
#      600 on each replica: each evicts exactly 200, by itself, and stores
#      600;
#   5. servers that store rows otherwise (--accum f32 against the job's
#      uf16-free sgd rows is no difference; a different --expire-after is):
#      a joiner started with another --expire-after refuses the donor's
#      pages, saying why.
. "$(dirname "$0")/lib.sh"
D=$TMP
CTL="$ZPS_BIN/zps-ctl"
S=2 R=2
JOB="--table-dim 1 --optimizer sgd --lr 1 --admit count:2 --admit-ids 65536 --expire-after 60 --max-keys 600 --evict"
stat() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
stats_of() { eval "ep=\$EP$1"; "$CTL" --servers "$ep" stats | head -1; }

"$ZPS_BIN/zps-coord" --listen tcp://127.0.0.1:0 --num-servers $S --replicas $R \
    --ready-file "$D/coord.ready" >/dev/null 2>"$D/coord.log" &
PIDS="$PIDS $!"
wait_file "$D/coord.ready" "the coordinator"
COORD=$(cat "$D/coord.ready")
start_server() { # I [extra options]
    i=$1; shift
    rm -f "$D/ready.$i"
    "$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 --rank "$i" --num-servers $S \
        --ready-file "$D/ready.$i" $JOB --coordinator "$COORD" "$@" >/dev/null 2>>"$D/server.$i.log" &
    eval "SPID$i=$!"; PIDS="$PIDS $!"
    wait_file "$D/ready.$i" "server $i"
    eval "EP$i=$(cat "$D/ready.$i")"
}
start_server 0
start_server 1
wait_log "$D/coord.log" "table version" 30 "no range table"
push() { # FILE: every line a push, through the coordinator
    "$CTL" --coordinator "$COORD" --rank 1 --server-timeout 60 push --file "$1" --window 1 \
        >"$D/push.out" 2>"$D/push.log" || fail "push of $1 failed: $(tail -3 "$D/push.log")"
}
lines() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { for (r = 0; r < t; r++) for (k = a; k <= b; k++) print k ":1" }'; }

# ---- 1. admission on both replicas --------------------------------------------------------
lines 1 300 2 >"$D/twice.txt"
lines 10001 10200 1 >"$D/once.txt"
push "$D/twice.txt"
push "$D/once.txt"
for i in 0 1; do
    line=$(stats_of $i)
    [ "$(stat keys_stored "$line")" = 300 ] || fail "server $i stores $(stat keys_stored "$line") keys, 300 expected: $line"
    [ "$(stat admission_rejected_keys "$line")" = 500 ] || fail "server $i: 500 key updates not admitted expected: $line"
done
echo "ok: --admit count:2 on both replicas: 300 keys stored, 500 key updates not admitted, each"

# ---- 2. a rejoin copies rows, stamps and counts ----------------------------------------------
kill -9 $SPID1
wait_log "$D/coord.log" "removed server 1" 30 "server 1 not removed"
start_server 1
wait_log "$D/coord.log" "server 1 completed its join" 30 "server 1 did not rejoin"
grep -q "join: server 0's admission counts taken" "$D/server.1.log" ||
    fail "the joiner did not take the donor's admission counts: $(grep -i join "$D/server.1.log" | tail -3)"
sleep 2 # maintenance passes sweep the copied rows meanwhile
"$CTL" --servers "$EP1" dump --out "$D/dump1.txt" 2>/dev/null || fail "dump of server 1 failed"
[ "$(wc -l <"$D/dump1.txt")" = 300 ] || fail "the joiner holds $(wc -l <"$D/dump1.txt") keys, 300 expected (copied rows expired?)"
awk '$2 != -1 || $1 < 1 || $1 > 300 { bad++ } END { exit bad > 0 }' "$D/dump1.txt" ||
    fail "the joiner's copy is not keys 1..300 at -1: $(awk '$2 != -1' "$D/dump1.txt" | head -3)"
echo "ok: the rejoined server holds the 300 rows at -1, 2 s after its copy (their stamps read right), and took the donor's admission counts"

# ---- 3. counts from before the join admit on the joiner --------------------------------------
push "$D/once.txt"
for i in 0 1; do
    eval "ep=\$EP$i"
    "$CTL" --servers "$ep" dump --out "$D/dump.$i" 2>/dev/null || fail "dump of server $i failed"
    n=$(awk '$1 >= 10001 && $1 <= 10200 && $2 == -1' "$D/dump.$i" | wc -l)
    [ "$n" = 200 ] || fail "server $i stores $n of keys 10001..10200 after their second push, 200 expected"
done
echo "ok: keys pushed once before the join and once after are stored on both replicas (the joiner counted the first)"

# ---- 4. the cap on each replica ----------------------------------------------------------------
lines 20001 20300 2 >"$D/more.txt"
push "$D/more.txt"
for i in 0 1; do
    line=$(stats_of $i)
    [ "$(stat keys_stored "$line")" = 600 ] || fail "server $i: 600 keys stored expected (the cap): $line"
done
line=$(stats_of 0)
[ "$(stat evicted_keys "$line")" = 200 ] || fail "server 0: 200 evictions expected: $line"
line=$(stats_of 1)
[ "$(stat evicted_keys "$line")" = 200 ] || fail "server 1: 200 evictions expected: $line"
echo "ok: --max-keys 600 --evict: 800 keys admitted, each replica stores 600 and evicted 200"

# ---- 5. a joiner that stores rows otherwise refuses the copy ---------------------------------------
kill -9 $SPID1
wait_log "$D/coord.log" "removed server 1" 30 "server 1 not removed again"
JOB="$JOB --expire-after 7200" # quanta of 1 s, not 1/4 s: stamps would be misread
start_server 1
wait_log "$D/server.1.log" "stores table 0's rows as" 30 "the joiner took rows stored otherwise"
grep "stores table 0's rows as" "$D/server.1.log" | tail -1 | sed 's/.*info: //; s/.*warn: //'
echo "ok: a joiner with another --expire-after refuses the donor's pages, naming both layouts"
echo "it_replica_bounded: ok"
