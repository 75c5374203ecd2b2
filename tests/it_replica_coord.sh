#!/bin/sh
# Replication: the coordinator dies mid-job and comes back.  3 servers, 2
# replicas, 4 zps-ctl pushers (sgd, lr 1, integer gradients: exact sums)
# through one zps-proxy per server.  The coordinator is killed with -9 while
# the pushers run and started again on the same address.  It keeps no
# files: the servers report the table they hold (BEAT with its version, the
# table when asked), it adopts the newest after a grace of one failure
# timeout and removes no one who beat meanwhile.  While it is away the
# servers' leases run out (each says so) and they refuse pushes and pulls
# (ZPS_ENOLEASE), which the clients retry: the job pauses, nothing is lost, and every
# replica ends with exactly the independently computed sums.  Then the same
# with a server killed while the coordinator is away: the restarted
# coordinator does not hear it during the grace and removes it.
. "$(dirname "$0")/lib.sh"
D=$TMP
CTL="$ZPS_BIN/zps-ctl"
P=4 LINES=${COORD_LINES:-400} S=3 R=2
JOB="--table-dim 1 --optimizer sgd --lr 1"
p=0
while [ $p -lt $P ]; do
    awk -v seed=$((51 + p)) -v lines=$LINES 'BEGIN { srand(seed); for (l = 0; l < lines; l++) {
        n = 1 + int(rand() * 12); s = "";
        for (i = 0; i < n; i++) { k = int(rand() * 4000); s = s (i ? " " : "") k ":" (int(rand() * 17) - 8) }
        print s } }' >"$D/push.$p.txt"
    p=$((p + 1))
done
cat "$D"/push.*.txt | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, ":"); sum[kv[1]] -= kv[2] } }
    END { for (k in sum) { v = sum[k]; if (v == 0) v = 0; printf "%s %.0f\n", k, v } }' | sort -n -k1,1 >"$D/expect.txt"
cut -d' ' -f1 "$D/expect.txt" >"$D/keys.txt"

start_coord() { # start_coord CASE [ENDPOINT]
    rm -f "$D/coord.ready"
    "$ZPS_BIN/zps-coord" --listen "${2:-tcp://127.0.0.1:0}" --num-servers $S --replicas $R \
        --ready-file "$D/coord.ready" >/dev/null 2>>"$D/coord.$1.log" &
    COORD_PID=$!; PIDS="$PIDS $!"
    t=0; while [ ! -s "$D/coord.ready" ]; do t=$((t + 1)); [ $t -gt 100 ] && fail "coordinator not ready"; sleep 0.1; done
    COORD=$(cat "$D/coord.ready")
}
c2s() { cat "$D"/px*.stats 2>/dev/null | sed -n 's/^c2s_in=\([0-9]*\) .*/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }
running() { for q in $PP; do kill -0 "$q" 2>/dev/null && return 0; done; return 1; }
wait_msgs() {
    t=0
    while [ "$(c2s)" -lt "$1" ]; do
        running || fail "case $C: the pushers finished before $1 client messages"
        t=$((t + 1)); [ $t -gt 1200 ] && fail "case $C: no progress"
        sleep 0.05
    done
}

run_case() { # run_case CASE KILL_SERVER(-: none)
    C=$1
    rm -f "$D"/px*.stats
    start_coord $C
    for i in 0 1 2; do
        rm -f "$D/ready.$i"
        "$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 --rank $i --num-servers $S --ready-file "$D/ready.$i" \
            $JOB --coordinator "$COORD" >/dev/null 2>"$D/server.$C.$i.log" &
        eval "SPID$i=$!"; PIDS="$PIDS $!"
    done
    PX=""
    for i in 0 1 2; do
        t=0; while [ ! -s "$D/ready.$i" ]; do t=$((t + 1)); [ $t -gt 100 ] && fail "server $i not ready"; sleep 0.1; done
        eval "EP$i=$(cat "$D/ready.$i")"
        "$ZPS_BIN/zps-proxy" --listen tcp://127.0.0.1:0 --upstream "$(cat "$D/ready.$i")" --seed $((400 + 10 * C + i)) \
            --drop 0.03 --dup 0.03 --ready-file "$D/px$i.ready.$C" --stats-file "$D/px$i.stats" >/dev/null 2>&1 &
        eval "PXPID$i=$!"; PIDS="$PIDS $!"
    done
    for i in 0 1 2; do
        t=0; while [ ! -s "$D/px$i.ready.$C" ]; do t=$((t + 1)); [ $t -gt 100 ] && fail "proxy $i not ready"; sleep 0.1; done
        PX="${PX:+$PX,}$(cat "$D/px$i.ready.$C")"
    done
    PP=""
    p=0
    while [ $p -lt $P ]; do
        "$CTL" --servers "$PX" --coordinator "$COORD" --rank $((p + 1)) --retry 0.2 --server-timeout 60 \
            push --file "$D/push.$p.txt" --window 8 >"$D/pusher.$C.$p.out" 2>"$D/pusher.$C.$p.log" &
        PP="$PP $!"
        p=$((p + 1))
    done
    wait_msgs 600
    echo "case $C: killing the coordinator after $(c2s) client messages"
    kill -9 "$COORD_PID"
    DEAD=""
    if [ "$2" != - ]; then
        sleep 0.3
        eval "kill -9 \$SPID$2"
        DEAD=$2
        echo "case $C: and server $2 while it is away"
    fi
    sleep 1.5  # away for longer than the leases (500 ms): the servers refuse meanwhile
    start_coord $C "$COORD"
    wait_log "$D/coord.$C.log" "adopted table version" 20 "case $C: the restarted coordinator adopted no table"
    echo "case $C: restarted coordinator: $(grep "adopted table version" "$D/coord.$C.log" | sed 's/.*info: //' | cut -c1-150)"
    if [ -n "$DEAD" ]; then
        wait_log "$D/coord.$C.log" "removed server $DEAD" 20 "case $C: server $DEAD not removed"
    else
        grep -q "removed server" "$D/coord.$C.log" && fail "case $C: the restarted coordinator removed a live server: $(grep "removed server" "$D/coord.$C.log")"
    fi
    p=0
    for q in $PP; do
        wait "$q" || fail "case $C: pusher $p failed: $(tail -3 "$D/pusher.$C.$p.log")"
        grep -q "^pushed $LINES lines" "$D/pusher.$C.$p.out" || fail "case $C: pusher $p: $(cat "$D/pusher.$C.$p.out")"
        p=$((p + 1))
    done
    # every live server knew it had no lease while the coordinator was away
    # (its membership thread says so after 1 s without an answer; whether a
    # request reached it meanwhile depends on timing: not asserted)
    for i in 0 1 2; do
        [ "$i" = "$DEAD" ] && continue
        grep -q "has not answered for .*no lease: refusing" "$D/server.$C.$i.log" ||
            fail "case $C: server $i did not notice it had lost its lease: $(tail -3 "$D/server.$C.$i.log")"
    done
    echo "case $C: all $P pushers acknowledged all $LINES lines each; every live server dropped its lease while the coordinator was away ($(grep -h "refused: no lease" "$D"/server.$C.*.log | wc -l) refusal lines)"
    "$CTL" --coordinator "$COORD" table --file "$D/keys.txt" >"$D/map.$C.txt" || fail "case $C: table failed"
    grep -q ' lost' "$D/map.$C.txt" && fail "case $C: keys without a replica"
    for i in 0 1 2; do
        [ "$i" = "$DEAD" ] && continue
        eval "ep=\$EP$i"
        "$CTL" --servers "$ep" dump --out "$D/dump.$C.$i" 2>/dev/null || fail "case $C: dump of server $i failed"
        awk -v me=$i 'NR == FNR { e[$1] = $2; next } { for (j = 3; j <= NF; j++) if ($j == me) print $1, e[$1] }' \
            "$D/expect.txt" "$D/map.$C.txt" | sort -n -k1,1 >"$D/want.$C.$i"
        cmp -s "$D/want.$C.$i" "$D/dump.$C.$i" ||
            fail "case $C: server $i: $(diff "$D/want.$C.$i" "$D/dump.$C.$i" | grep -c '^<') of its $(wc -l <"$D/want.$C.$i") keys differ from the exact sums"
        echo "  server $i: all $(wc -l <"$D/want.$C.$i") keys it replicates hold the exact sums"
    done
    for i in 0 1 2; do eval "kill -KILL \$SPID$i \$PXPID$i" 2>/dev/null; done
    kill -TERM "$COORD_PID" 2>/dev/null
    wait 2>/dev/null
}

run_case 1 -
run_case 2 1
echo "ok: the coordinator killed and restarted mid-job: the table rebuilt from the servers, no live server removed, every replica exact; a server that died meanwhile removed after the grace"
echo "it_replica_coord: ok"
