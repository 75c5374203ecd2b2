#!/bin/sh
# Replication: a server dies holding pushes it never acknowledged, the
# pusher's only copy of them went to it, and nothing is lost or applied
# twice (relays: docs/architecture.md, "Relays").
#
# 2 servers, 2 replicas, one zps-ctl pusher.  Server 1 is killed; the pusher
# learns the table without it (version V), then its link to the coordinator
# is cut (the proxy's --block-file), so it goes on splitting its pushes by
# V: they go to server 0 alone.  A new server 1 joins at a later version (the
# cut), copying from donor server 0, and becomes a replica.  Then server 0
# is killed with some of the pusher's pushes unacknowledged, and the
# pusher's coordinator link comes back.  Those pushes' parts for server 0
# were the only copy the pusher sent: it relays them to the ranges' replica
# now (server 1), which must apply each exactly once, so that server 1 alone
# holds every key's exact sum.
#   case 1: after server 1 rejoined, server 0's link to it is cut: the pushes
#     server 0 applies now are forwarded and lost on the way, so server 0
#     holds their acknowledgements.  Server 1 lacks them: it applies the
#     relays.  (Before relays the pusher dropped such parts at the failover,
#     as if every other replica had its own copy: 65 of 5502 keys wrong.)
#   case 2: before server 1 rejoins, server 0's answers to the pusher are
#     cut: server 0 applies pushes whose acknowledgements are lost, and they
#     are in its snapshot.  Server 1 has them: it must not apply the relays
#     (the snapshot carries server 0's exactly-once windows at the fork).
. "$(dirname "$0")/lib.sh"
CTL="$ZPS_BIN/zps-ctl"
P=1 LINES=${RELAY_LINES:-4000}
S=2 R=2
JOB="--table-dim 1 --optimizer sgd --lr 1"
push_workload 71 3000

bg() { "$@" & CPIDS="$CPIDS $!"; PIDS="$PIDS $!"; }

run_case() { # CASE
    C=$1 D=$TMP/c$1 CPIDS=""
    mkdir -p "$D"
    bg "$ZPS_BIN/zps-coord" --listen tcp://127.0.0.1:0 --num-servers $S --replicas $R \
        --ready-file "$D/coord.ready" >/dev/null 2>"$D/coord.log"
    wait_file "$D/coord.ready" "coordinator"
    COORD=$(cat "$D/coord.ready")
    # the pusher's link to the coordinator, cut while $D/block.coord exists
    bg "$ZPS_BIN/zps-proxy" --listen tcp://127.0.0.1:0 --upstream "$COORD" \
        --block-file "$D/block.coord" --ready-file "$D/cpx.ready" >/dev/null 2>&1
    wait_file "$D/cpx.ready" "coordinator proxy"
    # the servers' own ports; a server's peer link (donors to it) is cut
    # while $D/block.peerI exists
    PORT0=$((18000 + ($$ * 5 + 2 * C) % 14000))
    for i in 0 1; do
        bg "$ZPS_BIN/zps-proxy" --listen tcp://127.0.0.1:0 --upstream "tcp://127.0.0.1:$((PORT0 + i))" \
            --block-file "$D/block.peer$i" --ready-file "$D/peer$i.ready" >/dev/null 2>&1
    done
    for i in 0 1; do
        wait_file "$D/peer$i.ready" "peer proxy $i"
        eval "PEER$i=$(cat "$D/peer$i.ready")"
    done
    start_server 0
    start_server 1
    # proxies in front of the servers: they count the pusher's messages,
    # cut server I's answers while $D/block.acksI exists, and slow the
    # pusher down (a jitter of up to 20 ms on every other message), so that
    # it is still pushing when the last step comes
    PX=""
    for i in 0 1; do
        eval "up=\$EP$i"
        bg "$ZPS_BIN/zps-proxy" --listen tcp://127.0.0.1:0 --upstream "$up" --c2s-delay-ms 20 \
            --s2c-block-file "$D/block.acks$i" --ready-file "$D/px$i.ready" \
            --stats-file "$D/px$i.stats" >/dev/null 2>&1
    done
    for i in 0 1; do
        wait_file "$D/px$i.ready" "proxy $i"
        PX="${PX:+$PX,}$(cat "$D/px$i.ready")"
    done

    "$CTL" --servers "$PX" --coordinator "$(cat "$D/cpx.ready")" --rank 1 --retry 0.2 \
        --server-timeout 60 push --file "$TMP/push.0.txt" --window 8 >"$D/pusher.out" 2>"$D/pusher.log" &
    PUSHER=$!
    CPIDS="$CPIDS $!"; PIDS="$PIDS $!"

    wait_c2s 0 100 "the first pushes"
    kill -9 "$SPID1"
    wait_log "$D/coord.log" "removed server 1" 30 "case $C: server 1 not removed"
    wait_log "$D/pusher.log" "server 1 .* is not in the range table" 30 "case $C: the pusher did not fail over from server 1"
    touch "$D/block.coord"
    echo "case $C: server 1 killed; the pusher split by the table without it, then lost its coordinator link"
    if [ "$C" = 2 ]; then
        # first the relays the failover made of server 1's unacknowledged
        # parts must be acknowledged (else they, not pushes, are what waits
        # for server 0): the pusher's window (8) waits for them, so 24 more
        # messages to server 0 (at most 8 relays, then pushes) mean they were
        n=$(c2s 0)
        wait_c2s 0 $((n + 24)) "pushes after the failover's relays"
        touch "$D/block.acks0"
        n=$(c2s 0)
        wait_c2s 0 $((n + 16)) "pushes applied by server 0 with their acknowledgements lost"
        echo "case $C: server 0's answers to the pusher are cut; $(($(c2s 0) - n)) more messages to it"
    fi
    start_server 1
    wait_log "$D/coord.log" "server 1 completed its join" 30 "case $C: server 1 did not rejoin"
    if [ "$C" = 1 ]; then
        touch "$D/block.peer1"
        n=$(c2s 0)
        wait_c2s 0 $((n + 16)) "pushes applied by server 0 after its snapshot"
        echo "case $C: server 1 rejoined from donor server 0; server 0's forwards to it are now lost;" \
             "$(($(c2s 0) - n)) more messages to server 0"
    else
        echo "case $C: server 1 rejoined from donor server 0 (its snapshot holds those pushes)"
    fi

    kill -9 "$SPID0"
    wait_log "$D/coord.log" "removed server 0" 30 "case $C: server 0 not removed"
    rm -f "$D/block.coord" "$D/block.peer1" "$D/block.acks0"
    echo "case $C: server 0 killed with pushes unacknowledged; the pusher's coordinator link is back"

    wait "$PUSHER" || fail "case $C: the pusher failed: $(tail -3 "$D/pusher.log")"
    grep -q "^pushed $LINES lines" "$D/pusher.out" || fail "case $C: pusher: $(cat "$D/pusher.out")"
    # server 1 is the only replica of every range now: it must hold every sum
    "$CTL" --servers "$EP1" dump --out "$D/dump.1" 2>/dev/null || fail "case $C: dump of server 1 failed"
    if ! cmp -s "$TMP/expect.txt" "$D/dump.1"; then
        awk 'NR == FNR { e[$1] = $2; next } { d[$1] = $2 }
             END { for (k in e) if (!(k in d) || d[k] != e[k]) print k, e[k], (k in d) ? d[k] : "missing" }' \
            "$TMP/expect.txt" "$D/dump.1" >"$D/diff.1"
        head -5 "$D/diff.1" | sed 's/^/  key, expected, stored: /'
        fail "case $C: server 1: $(wc -l <"$D/diff.1") of $(wc -l <"$TMP/expect.txt") keys differ from the exact sums"
    fi
    "$CTL" --servers "$EP1" stats >"$D/stats.1" 2>&1 || fail "case $C: stats of server 1 failed: $(cat "$D/stats.1")"
    awk '$1 == "client" { a = s = ""; for (i = 2; i <= NF; i++) { split($i, kv, "=");
             if (kv[1] == "applied") a = kv[2]; if (kv[1] == "applied_seq") s = kv[2] }
             n++; if (a == "" || s == "" || a != s) { print; bad = 1 } }
         END { exit bad || n == 0 }' "$D/stats.1" >"$D/stats.bad" ||
        fail "case $C: server 1: a client's applied pushes differ from its low-water mark: $(head -3 "$D/stats.bad")"
    relayed=$(sed -n 's/.*relayed \([0-9]*\) push part.*/\1/p' "$D/pusher.log" | awk '{ s += $1 } END { print s + 0 }')
    [ "$relayed" -gt 0 ] || fail "case $C: the pusher relayed nothing: the case did not happen"
    rk=$(sed -n '1s/.* relay_keys=\([0-9]*\).*/\1/p' "$D/stats.1")
    known=$(sed -n '1s/.* relays_known=\([0-9]*\).*/\1/p' "$D/stats.1")
    [ -n "$rk" ] && [ -n "$known" ] || fail "case $C: no relay counters in: $(head -1 "$D/stats.1")"
    if [ "$C" = 1 ]; then
        [ "$rk" -gt 0 ] || fail "case $C: server 1 applied no relayed key: the case did not happen"
    else
        [ "$rk" = 0 ] || fail "case $C: server 1 applied $rk relayed keys its snapshot held (twice)"
        [ "$known" -gt 0 ] || fail "case $C: server 1 knew no relay as held: the case did not happen"
    fi
    echo "ok: case $C: server 1 holds the exact sum of all $(wc -l <"$TMP/expect.txt") keys ($LINES lines);" \
         "the pusher relayed $relayed parts; server 1 applied $rk of their keys, knew $known relays as held"
    kill $CPIDS 2>/dev/null
    wait 2>/dev/null
}

start_server() {
    rm -f "$D/ready.$1"
    eval "peer=\$PEER$1"
    bg "$ZPS_BIN/zps-server" --bind "tcp://127.0.0.1:$((PORT0 + $1))" --announce "$peer" --rank "$1" \
        --num-servers $S --ready-file "$D/ready.$1" $JOB --coordinator "$COORD" >/dev/null 2>>"$D/server.$1.log"
    eval "SPID$1=$!"
    wait_file "$D/ready.$1" "server $1"
    eval "EP$1=$(cat "$D/ready.$1")"
}
c2s() { sed -n 's/^c2s_in=\([0-9]*\) .*/\1/p' "$D/px$1.stats" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
wait_c2s() { # I N WHAT
    t=0
    while [ "$(c2s "$1")" -lt "$2" ]; do
        kill -0 "$PUSHER" 2>/dev/null || fail "case $C: the pusher ended before $3: $(tail -3 "$D/pusher.log")"
        t=$((t + 1)); [ $t -gt 600 ] && fail "case $C: no progress ($3): $(c2s "$1") messages to server $1"
        sleep 0.05
    done
}

for c in ${RELAY_CASES:-1 2}; do run_case $c; done
echo "it_replica_relay: ok"
