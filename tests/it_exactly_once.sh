#!/bin/sh
# Exactly once under message loss, duplication, reordering and server
# crashes.  4 zps-ctl push processes (one client each: its own rank and
# nonce, one push per line) push a known workload through one zps-proxy per
# server (drop, duplicate and reorder 5% of the messages, both directions)
# to 3 servers that checkpoint every 0.3 s.  Two servers are killed with -9
# during the run -- when the proxies have counted N1 and N2 client messages,
# not after a time -- and restarted with --restore on the same port.  At
# the end every stored weight must equal the independently computed sum
# EXACTLY: sgd with lr 1 makes a weight minus the sum of its gradients, and
# the gradients are small integers, so every sum is exact in float in any
# order of application.  Nothing lost, nothing applied twice.
. "$(dirname "$0")/lib.sh"
D=$TMP
CTL="$ZPS_BIN/zps-ctl"
S=3 P=4 LINES=300
N1=${EO_N1:-600} N2=${EO_N2:-1500}   # client messages counted by the proxies before each kill
# (for checking the test itself: EO_FAULTS="--dup 0.05" EO_KILLS="" runs it without loss or crashes)
FAULTS=${EO_FAULTS-"--drop 0.05 --dup 0.05 --reorder 0.05"}
KILLS=${EO_KILLS-"1 2"}
CK="--checkpoint-dir $D/ck --checkpoint-every 0.3"
JOB="--table-dim 1 --optimizer sgd --lr 1"

start_servers $S $JOB $CK
set -- $SERVER_PIDS
SPID0=$1 SPID1=$2 SPID2=$3
i=0; for ep in $(echo "$SERVERS" | tr ',' ' '); do eval "EP$i=$ep"; i=$((i + 1)); done

# one proxy per server
PX=""
i=0
while [ $i -lt $S ]; do
    eval "up=\$EP$i"
    "$ZPS_BIN/zps-proxy" --listen tcp://127.0.0.1:0 --upstream "$up" --seed $((100 + i)) \
        $FAULTS --reorder-k 3 --max-hold-ms 300 \
        --ready-file "$D/px$i.ready" --stats-file "$D/px$i.stats" >"$D/px$i.out" 2>"$D/px$i.log" &
    eval "PXPID$i=$!"; PIDS="$PIDS $!"
    i=$((i + 1))
done
i=0
while [ $i -lt $S ]; do
    t=0; while [ ! -s "$D/px$i.ready" ]; do t=$((t + 1)); [ $t -gt 100 ] && fail "proxy $i not ready"; sleep 0.1; done
    PX="${PX:+$PX,}$(cat "$D/px$i.ready")"
    i=$((i + 1))
done
echo "servers $SERVERS behind proxies $PX"

# the workload: per pusher, LINES lines of 1..12 keys (dense ids and scattered 64-bit ids),
# values in -8..8
push_workload 7 3000

PP=""
p=0
while [ $p -lt $P ]; do
    "$CTL" --servers "$PX" --rank $((p + 1)) --retry 0.5 --server-timeout 60 \
        push --file "$D/push.$p.txt" --window 32 >"$D/pusher.$p.out" 2>"$D/pusher.$p.log" &
    PP="$PP $!"
    p=$((p + 1))
done

# client messages the proxies have seen so far
c2s() { cat "$D"/px*.stats 2>/dev/null | sed -n 's/^c2s_in=\([0-9]*\) .*/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }
running() { for q in $PP; do kill -0 "$q" 2>/dev/null && return 0; done; return 1; }
# kill_restart R: kill -9 server R, restart it with --restore on its port
kill_restart() {
    eval "pid=\$SPID$1 ep=\$EP$1"
    kill -9 "$pid"; wait "$pid" 2>/dev/null
    sleep 1    # the pushers' requests to it go unanswered meanwhile
    "$ZPS_BIN/zps-server" --bind "$ep" --rank "$1" --num-servers $S $JOB $CK --restore \
        >/dev/null 2>"$D/server.$1.restart.log" &
    eval "SPID$1=$!"; PIDS="$PIDS $!"
}
n=$N1
for r in $KILLS; do
    t=0
    while [ "$(c2s)" -lt "$n" ]; do
        running || fail "the pushers finished before $n client messages (the workload is too small to kill server $r)"
        t=$((t + 1)); [ $t -gt 1200 ] && fail "no progress: $(c2s) client messages after 60 s"
        sleep 0.05
    done
    echo "killing server $r after $(c2s) client messages"
    kill_restart "$r"
    n=$N2
done
p=0
for q in $PP; do
    wait "$q" || fail "pusher $p failed: $(tail -3 "$D/pusher.$p.log")"
    grep -q "^pushed $LINES lines" "$D/pusher.$p.out" || fail "pusher $p: $(cat "$D/pusher.$p.out")"
    p=$((p + 1))
done
echo "all $P pushers acknowledged all $LINES lines each"
for r in $KILLS; do
    grep -q "restored checkpoint" "$D/server.$r.restart.log" ||
        fail "restarted server $r did not restore a checkpoint: $(tail -3 "$D/server.$r.restart.log")"
done

for i in 0 1 2; do eval "kill -TERM \$PXPID$i"; eval "wait \$PXPID$i"; done
echo "proxies (client->server and back):"
cat "$D"/px*.out | sed 's/^/  /'

"$CTL" --servers "$SERVERS" stats >"$D/stats.txt" || fail "stats failed"
tot=$(grep '^total ' "$D/stats.txt")
val() { echo "$tot" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
echo "servers: pushes acknowledged $(val pushes), received $(val received_pushes), applied $(val applied_pushes)," \
    "duplicates $(val duplicate_pushes), rejected $(val rejected_pushes), lost $(val lost_pushes)" \
    "(the restarted servers count since their restart)"

"$CTL" --servers "$SERVERS" dump --out "$D/dump.txt" 2>/dev/null || fail "dump failed"
nk=$(wc -l <"$D/expect.txt")
if ! cmp -s "$D/dump.txt" "$D/expect.txt"; then
    awk 'NR == FNR { e[$1] = $2; next } { d[$1] = $2 }
         END { for (k in e) if (!(k in d) || d[k] != e[k]) print k, e[k], (k in d) ? d[k] : "missing";
               for (k in d) if (!(k in e)) print k, "none", d[k] }' "$D/expect.txt" "$D/dump.txt" >"$D/diff.txt"
    bad=$(wc -l <"$D/diff.txt")
    head -5 "$D/diff.txt" | sed 's/^/  key, expected, stored: /'
    fail "$bad of $nk weights differ from the exact sums (pushes lost or applied twice)"
fi
echo "ok: all $nk weights equal the exact sums of $((P * LINES)) lines (proxy faults: $FAULTS; servers killed and restored: ${KILLS:-none})"
echo "it_exactly_once: ok"
