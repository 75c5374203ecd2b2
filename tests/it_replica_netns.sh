#!/bin/sh
# Replication across a cut link (not a kill), on test hosts built on this
# machine (tests/netns.sh: network namespaces joined by a bridge).  Host 1
# runs zps-coord, hosts 2..4 run servers 0..2 (--replicas 2), each bound to
# its host's address; the 4 zps-ctl pushers and their zps-proxy per server
# (which only paces the job: a few ms of jitter, no faults) run in the root
# namespace and reach the hosts over the bridge.  The workload is
# it_replica.sh's: sgd with lr 1 and integer gradients, so every live
# replica of every key must end holding exactly the independently computed
# sum, whatever the order and the failovers.
#   case 1: server 1's link goes down (its veth on the bridge, while the
#           pushers run: after the proxies have counted N client messages,
#           not after a time).  Its membership thread warns "no lease:
#           refusing" while cut off; the coordinator removes it; the pushers
#           fail over and all finish (nothing acknowledged is lost); the
#           live replicas hold the exact sums.  Then the link comes back:
#           server 1 learns it was removed and exits with status 3 (its copy
#           is stale: no stale answers, no second primary); started fresh,
#           it rejoins (copies its ranges from the live replicas) and all
#           three hold the exact sums.
#   case 2: only server 1's path to the COORDINATOR is cut (a blackhole
#           route each way between hosts 3 and 1), the clients still reach
#           it: no split brain -- once its lease ran out, server 1 refuses
#           (a pull of its primary keys sent straight to it, repeated until
#           refused; the pushers' retries too) while the coordinator still
#           lists it in the table (asked afterwards: the refusal came first;
#           the coordinator's failure timeout is twice the lease, 4 s here
#           so that a loaded machine has the 2 s between them).  Then as in
#           case 1: removal, failover, exact sums; the path returns, server
#           1 learns it was removed, exits, and a fresh process rejoins.
# Not a case here: the COORDINATOR's link cut for longer than the failure
# timeout.  The servers stop serving (no lease); the coordinator removes
# servers for silence only while that loses no range (it never removes a
# range's last replica), so the job stops but nothing is declared lost; when
# the link returns, the servers it removed exit and must be started again
# (zps-launch --restart-servers) to rejoin.
# Needs root and `ip netns`; without them it is skipped (exit 77).  Every
# namespace, link and process is removed at exit, also when a check fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
PATH=$PATH:/usr/sbin:/sbin
D=$TMP
CTL="$ZPS_BIN/zps-ctl"
P=4 LINES=${REPL_LINES:-1000} S=3 R=2
JOB="--table-dim 1 --optimizer sgd --lr 1"

netns_check
netns_up 4 # its EXIT trap removes the hosts; a TERM (run-integration's timeout) exits through it
trap 'exit 1' INT TERM
H_COORD=zps${N}h1
# hns RANK: the namespace of server RANK (hosts 2..4); hveth RANK: its link
# on the bridge (root side); hip RANK: its address
hns() { echo "zps${N}h$(($1 + 2))"; }
hveth() { echo "zps${N}v$(($1 + 2))"; }
hip() { echo "$SUB.1$(($1 + 2))"; }
COORD_IP=$SUB.11

push_workload 31 3000
NK=$(wc -l <"$D/expect.txt")


# start_job CASE FAILURE_MS: the coordinator on host 1, server i on host
# i+2, one pacing proxy per server in the root namespace
start_job() {
    C=$1
    rm -f "$D/coord.ready"
    ip netns exec "$H_COORD" "$ZPS_BIN/zps-coord" --listen "tcp://$COORD_IP:7100" --num-servers $S \
        --replicas $R --failure-timeout-ms "$2" --ready-file "$D/coord.ready" >/dev/null 2>"$D/coord.$C.log" &
    COORD_PID=$!; PIDS="$PIDS $!"
    wait_file "$D/coord.ready" "the coordinator"
    COORD=$(cat "$D/coord.ready")
    i=0
    while [ $i -lt $S ]; do
        rm -f "$D/ready.$i"
        ip netns exec "$(hns $i)" "$ZPS_BIN/zps-server" --bind "tcp://$(hip $i):7200" --rank $i --num-servers $S \
            --ready-file "$D/ready.$i" $JOB --coordinator "$COORD" >/dev/null 2>"$D/server.$C.$i.log" &
        eval "SPID$i=$!"; PIDS="$PIDS $!"
        i=$((i + 1))
    done
    PX="" ALL=""
    i=0
    while [ $i -lt $S ]; do
        wait_file "$D/ready.$i" "server $i"
        eval "EP$i=$(cat "$D/ready.$i")"
        ALL="${ALL:+$ALL,}$(cat "$D/ready.$i")"
        rm -f "$D/px$i.ready" "$D/px$i.stats"
        "$ZPS_BIN/zps-proxy" --listen tcp://127.0.0.1:0 --upstream "$(cat "$D/ready.$i")" --seed $((100 * C + i)) \
            --delay-ms 8 --ready-file "$D/px$i.ready" --stats-file "$D/px$i.stats" >/dev/null 2>&1 &
        eval "PXPID$i=$!"; PIDS="$PIDS $!"
        i=$((i + 1))
    done
    i=0
    while [ $i -lt $S ]; do
        wait_file "$D/px$i.ready" "proxy $i"
        PX="${PX:+$PX,}$(cat "$D/px$i.ready")"
        i=$((i + 1))
    done
    wait_log "$D/server.$C.1.log" "member of the job" 10 "server 1 did not join the job"
    # the keys whose primary is server 1 in the first table: the pulls that
    # must reach server 1 itself once it is back
    "$CTL" --coordinator "$COORD" table --file "$D/keys.txt" >"$D/map0.$C.txt" || fail "case $C: table --file failed"
    K1=$(awk '$3 == 1 { print $1 }' "$D/map0.$C.txt" | head -100 | paste -sd, -)
    [ -n "$K1" ] || fail "case $C: no key has server 1 as its primary: $(head -3 "$D/map0.$C.txt")"
}

start_pushers() {
    PP=""
    p=0
    while [ $p -lt $P ]; do
        "$CTL" --servers "$PX" --coordinator "$COORD" --rank $((p + 1)) --retry 0.2 --server-timeout 60 \
            push --file "$D/push.$p.txt" --window 4 >"$D/pusher.$C.$p.out" 2>"$D/pusher.$C.$p.log" &
        PP="$PP $!"
        p=$((p + 1))
    done
}

c2s() { cat "$D"/px*.stats 2>/dev/null | sed -n 's/^c2s_in=\([0-9]*\) .*/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }
running() { for q in $PP; do kill -0 "$q" 2>/dev/null && return 0; done; return 1; }
wait_msgs() {
    t=0
    while [ "$(c2s)" -lt "$1" ]; do
        running || fail "case $C: the pushers finished before $1 client messages"
        t=$((t + 1)); [ $t -gt 1200 ] && fail "case $C: no progress: $(c2s) client messages after 60 s"
        sleep 0.05
    done
}

wait_pushers() {
    p=0
    for q in $PP; do
        wait "$q" || fail "case $C: pusher $p failed: $(tail -3 "$D/pusher.$C.$p.log")"
        grep -q "^pushed $LINES lines" "$D/pusher.$C.$p.out" || fail "case $C: pusher $p: $(cat "$D/pusher.$C.$p.out")"
        p=$((p + 1))
    done
    grep -q "failing over" "$D"/pusher.$C.*.log || fail "case $C: no pusher failed over"
}

# in_table RANK: 0 iff the coordinator's current table gives RANK ranges
in_table() {
    "$CTL" --coordinator "$COORD" table >"$D/tab.now" 2>&1 || fail "case $C: table failed: $(cat "$D/tab.now")"
    awk -v r="$1" '$1 == "server" && $2 == r && $4 == "ranges" && $5 > 0 { f = 1 } END { exit !f }' "$D/tab.now"
}

# check_replicas: every live replica holds exactly the sums of the keys the
# final table gives it (tests/it_replica.sh), and nothing else
check_replicas() {
    "$CTL" --coordinator "$COORD" table >"$D/table.$C.txt" || fail "case $C: table failed"
    "$CTL" --coordinator "$COORD" table --file "$D/keys.txt" >"$D/map.$C.txt" || fail "case $C: table --file failed"
    grep -q ' lost' "$D/map.$C.txt" && fail "case $C: keys without a replica: $(grep -c ' lost' "$D/map.$C.txt")"
    i=0
    while [ $i -lt $S ]; do
        case " $DEAD " in *" $i "*) i=$((i + 1)); continue ;; esac
        eval "ep=\$EP$i"
        "$CTL" --servers "$ep" dump --out "$D/dump.$C.$i" 2>/dev/null || fail "case $C: dump of server $i failed"
        awk -v me=$i 'NR == FNR { e[$1] = $2; next } { for (j = 3; j <= NF; j++) if ($j == me) print $1, e[$1] }' \
            "$D/expect.txt" "$D/map.$C.txt" | sort -n -k1,1 >"$D/want.$C.$i"
        if ! cmp -s "$D/want.$C.$i" "$D/dump.$C.$i"; then
            awk 'NR == FNR { e[$1] = $2; next } { d[$1] = $2 }
                 END { for (k in e) if (!(k in d) || d[k] != e[k]) print k, e[k], (k in d) ? d[k] : "missing";
                       for (k in d) if (!(k in e)) print k, "none", d[k] }' "$D/want.$C.$i" "$D/dump.$C.$i" >"$D/diff.$C.$i"
            head -5 "$D/diff.$C.$i" | sed 's/^/  key, expected, stored: /'
            fail "case $C: server $i: $(wc -l <"$D/diff.$C.$i") of its $(wc -l <"$D/want.$C.$i") keys differ from the exact sums"
        fi
        echo "  server $i: all $(wc -l <"$D/want.$C.$i") keys it replicates hold the exact sums"
        i=$((i + 1))
    done
}

# rejoin_after_return: server 1, back on the network, learns it was removed
# and exits with status 3 (its copy is stale, it must not serve); started
# fresh in its host (as zps-launch --restart-servers does), it joins, copies
# its ranges from the live replicas, and holds the exact sums
rejoin_after_return() {
    wait_log "$D/server.$C.1.log" "removed from the job's range table" 10 \
        "server 1 did not learn it was removed after its link returned: $(tail -2 "$D/server.$C.1.log")"
    t=0
    while kill -0 "$SPID1" 2>/dev/null; do
        t=$((t + 1)); [ $t -gt 100 ] && fail "case $C: server 1 still runs 10 s after it learnt it was removed"
        sleep 0.1
    done
    wait "$SPID1"; st=$?
    [ "$st" = 3 ] || fail "case $C: server 1 exited with $st, not 3"
    echo "case $C: back on the network, server 1 learnt it was removed and exited (status 3)"
    rm -f "$D/ready.1"
    ip netns exec "$(hns 1)" "$ZPS_BIN/zps-server" --bind "tcp://$(hip 1):7200" --rank 1 --num-servers $S \
        --ready-file "$D/ready.1" $JOB --coordinator "$COORD" >/dev/null 2>>"$D/server.$C.1.log" &
    SPID1=$!; PIDS="$PIDS $!"
    wait_log "$D/coord.$C.log" "server 1 completed its join" 20 "server 1 did not rejoin"
    in_table 1 || fail "case $C: server 1 completed its join but is not in the table"
    DEAD=""
    check_replicas
    echo "case $C: server 1 rejoined: $(grep "server 1 completed its join" "$D/coord.$C.log" | sed 's/.*info: //')"
}

stop_job() {
    for q in $PP; do kill -KILL "$q" 2>/dev/null; done
    i=0
    while [ $i -lt $S ]; do
        eval "kill -KILL \$SPID$i \$PXPID$i" 2>/dev/null
        i=$((i + 1))
    done
    kill -TERM "$COORD_PID" 2>/dev/null
    wait 2>/dev/null
}

# ---- case 1: server 1's link down ---------------------------------------------------------
start_job 1 1000
start_pushers
wait_msgs 600
echo "case 1: cutting server 1's link ($(hveth 1) down) after $(c2s) client messages"
ip link set "$(hveth 1)" down || fail "case 1: cannot set $(hveth 1) down"
wait_log "$D/coord.1.log" "removed server 1" 10 "the coordinator did not remove server 1"
wait_log "$D/server.1.1.log" "no lease: refusing" 10 "server 1 did not say it lost its lease while cut off"
DEAD="1"
wait_pushers
echo "case 1: all $P pushers acknowledged all $LINES lines each; server 1 removed, clients failed over"
check_replicas
ip link set "$(hveth 1)" up || fail "case 1: cannot set $(hveth 1) up"
rejoin_after_return
stop_job

# ---- case 2: only server 1's path to the coordinator cut ---------------------------------
# failure timeout 4 s: leases of 2 s
start_job 2 4000
start_pushers
wait_msgs 600
rej0=$("$CTL" --servers "$ALL" stats --server 1 | sed -n 's/^total .* rejected_pushes=\([0-9]*\).*/\1/p')
[ "$rej0" = 0 ] || fail "case 2: server 1 rejected pushes before the cut: $rej0"
echo "case 2: cutting server 1 off from the coordinator (blackhole routes) after $(c2s) client messages"
ip -n "$(hns 1)" route add blackhole "$COORD_IP/32" && ip -n "$H_COORD" route add blackhole "$(hip 1)/32" ||
    fail "case 2: cannot add the blackhole routes"
# the probe: a pull of server 1's primary keys sent straight to the servers
# (no --coordinator) until server 1 refuses it; then the coordinator is asked
t=0
while :; do
    if out=$("$CTL" --servers "$ALL" --retry 0.2 --server-timeout 3 pull "$K1" 2>&1); then
        t=$((t + 1)); [ $t -gt 100 ] && fail "case 2: server 1 still answers pulls 10 s after it was cut off from the coordinator"
        sleep 0.1
        continue
    fi
    echo "$out" | grep -q "no lease" || fail "case 2: the probe pull failed, but not for want of a lease: $out"
    break
done
in_table 1 || fail "case 2: inconclusive: the coordinator removed server 1 before its first refusal was seen ($(grep 'removed server 1' "$D/coord.2.log"))"
echo "$out" | grep -q "no answer from it yet" || fail "case 2: server 1 refused for another reason: $out"
echo "case 2: server 1 refused a pull (no lease) while the coordinator still listed it: no split brain"
grep -q "refused: no lease from the coordinator (not answered yet)" "$D/server.2.1.log" ||
    fail "case 2: server 1's log does not name the refusals"
wait_log "$D/coord.2.log" "removed server 1" 15 "the coordinator did not remove server 1"
DEAD="1"
wait_pushers
rej=$("$CTL" --servers "$ALL" stats --server 1 | sed -n 's/^total .* rejected_pushes=\([0-9]*\).*/\1/p')
echo "case 2: all $P pushers acknowledged all $LINES lines each; server 1 removed (it refused ${rej:-?} pushes meanwhile), clients failed over"
check_replicas
ip -n "$(hns 1)" route del blackhole "$COORD_IP/32" && ip -n "$H_COORD" route del blackhole "$(hip 1)/32" ||
    fail "case 2: cannot remove the blackhole routes"
rejoin_after_return
stop_job

left=$(netns_procs_left)
[ -z "$left" ] || fail "processes left on the test hosts: $left"
echo "ok: $NK keys, $((P * LINES)) lines; a cut link and a cut coordinator path: exact on the live replicas, the cut server refuses (no split brain), exits when back and rejoins exactly"
echo "it_replica_netns: ok"
