#!/bin/sh
# Replication: servers rejoin a running job and nothing is lost or applied
# twice.  3 servers, 2 replicas; 4 zps-ctl pushers push a known workload
# through one zps-proxy per server (drop, duplicate and reorder 5%), and
# the servers' own links (a donor's snapshot pages and forwards to a
# joiner) go through a second faulty proxy per server: each server
# announces that proxy to the coordinator (--announce).  Each
# server in turn is killed with -9, the coordinator removes it, and it is
# started again, fresh (no checkpoint): it joins, copying its ranges from
# the live replicas while the pushers go on (a snapshot at the join's cut,
# then the pushes forwarded or sent to it), and the coordinator makes it a
# replica again before the next kill.  sgd with lr 1 and integer
# gradients: at the end every replica of every key -- the rejoined ones
# too -- must hold exactly the independently computed sum.
. "$(dirname "$0")/lib.sh"
D=$TMP
CTL="$ZPS_BIN/zps-ctl"
P=4 LINES=${JOIN_LINES:-800}
S=3 R=2
JOB="--table-dim 1 --optimizer sgd --lr 1"
FAULTS=${JOIN_FAULTS-"--drop 0.05 --dup 0.05 --reorder 0.05"}

push_workload 31 5000

"$ZPS_BIN/zps-coord" --listen tcp://127.0.0.1:0 --num-servers $S --replicas $R \
    --ready-file "$D/coord.ready" >/dev/null 2>"$D/coord.log" &
PIDS="$PIDS $!"
t=0; while [ ! -s "$D/coord.ready" ]; do t=$((t + 1)); [ $t -gt 100 ] && fail "coordinator not ready"; sleep 0.1; done
COORD=$(cat "$D/coord.ready")

# the servers' own ports (the peer proxies point at them before they start)
PORT0=$((18000 + ($$ * 3) % 14000)) # 18000..31999: below the ephemeral ports (32768..), which a connection may hold, and above it_slurm's (16817..17015)
for i in 0 1 2; do
    "$ZPS_BIN/zps-proxy" --listen tcp://127.0.0.1:0 --upstream "tcp://127.0.0.1:$((PORT0 + i))" \
        --seed $((300 + i)) ${JOIN_PEER_FAULTS-$FAULTS} --reorder-k 3 --max-hold-ms 300 \
        --ready-file "$D/peer$i.ready" --stats-file "$D/peer$i.stats" >/dev/null 2>&1 &
    PIDS="$PIDS $!"
done
for i in 0 1 2; do
    t=0; while [ ! -s "$D/peer$i.ready" ]; do t=$((t + 1)); [ $t -gt 100 ] && fail "peer proxy $i not ready"; sleep 0.1; done
    eval "PEER$i=$(cat "$D/peer$i.ready")"
done
# start_server I: a fresh server I on its port, announcing its peer proxy
start_server() {
    rm -f "$D/ready.$1"
    eval "peer=\$PEER$1"
    "$ZPS_BIN/zps-server" --bind "tcp://127.0.0.1:$((PORT0 + $1))" --announce "$peer" --rank "$1" \
        --num-servers $S --ready-file "$D/ready.$1" $JOB --coordinator "$COORD" >/dev/null 2>>"$D/server.$1.log" &
    eval "SPID$1=$!"; PIDS="$PIDS $!"
    t=0; while [ ! -s "$D/ready.$1" ]; do t=$((t + 1)); [ $t -gt 100 ] && fail "server $1 not ready"; sleep 0.1; done
    eval "EP$1=$(cat "$D/ready.$1")"
}
for i in 0 1 2; do start_server $i; done
PX=""
for i in 0 1 2; do
    eval "up=\$EP$i"
    "$ZPS_BIN/zps-proxy" --listen tcp://127.0.0.1:0 --upstream "$up" --seed $((200 + i)) \
        $FAULTS --reorder-k 3 --max-hold-ms 300 \
        --ready-file "$D/px$i.ready" --stats-file "$D/px$i.stats" >/dev/null 2>&1 &
    PIDS="$PIDS $!"
done
for i in 0 1 2; do
    t=0; while [ ! -s "$D/px$i.ready" ]; do t=$((t + 1)); [ $t -gt 100 ] && fail "proxy $i not ready"; sleep 0.1; done
    PX="${PX:+$PX,}$(cat "$D/px$i.ready")"
done

PP=""
p=0
while [ $p -lt $P ]; do
    "$CTL" --servers "$PX" --coordinator "$COORD" --rank $((p + 1)) --retry 0.2 --server-timeout 60 \
        push --file "$D/push.$p.txt" --window 8 >"$D/pusher.$p.out" 2>"$D/pusher.$p.log" &
    PP="$PP $!"
    p=$((p + 1))
done
c2s() { cat "$D"/px*.stats 2>/dev/null | sed -n 's/^c2s_in=\([0-9]*\) .*/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }
running() { for q in $PP; do kill -0 "$q" 2>/dev/null && return 0; done; return 1; }

n=600
for i in ${JOIN_KILLS:-1 2 0}; do
    t=0
    while [ "$(c2s)" -lt "$n" ]; do
        running || fail "the pushers finished before $n client messages: make the workload larger"
        t=$((t + 1)); [ $t -gt 1200 ] && fail "no progress: $(c2s) client messages"
        sleep 0.05
    done
    echo "killing server $i after $(c2s) client messages"
    eval "kill -9 \$SPID$i"
    wait_log "$D/coord.log" "removed server $i" 30 "server $i not removed"
    start_server $i
    wait_log "$D/coord.log" "server $i completed its join" 30 "server $i did not rejoin"
    echo "server $i rejoined: $(grep "server $i completed its join" "$D/coord.log" | tail -1 | sed 's/.*info: //')"
    running || fail "the pushers finished before server $i had rejoined: make the workload larger"
    n=$(($(c2s) + 400))
done

p=0
for q in $PP; do
    wait "$q" || fail "pusher $p failed: $(tail -3 "$D/pusher.$p.log")"
    grep -q "^pushed $LINES lines" "$D/pusher.$p.out" || fail "pusher $p: $(cat "$D/pusher.$p.out")"
    p=$((p + 1))
done
echo "all $P pushers acknowledged all $LINES lines each"

"$CTL" --coordinator "$COORD" table >"$D/table.txt" || fail "table failed"
grep -q " lost 0$" "$D/table.txt" || fail "ranges lost: $(head -1 "$D/table.txt")"
"$CTL" --coordinator "$COORD" table --file "$D/keys.txt" >"$D/map.txt" || fail "table --file failed"
awk 'NF != 4 { bad++ } END { exit bad > 0 }' "$D/map.txt" || fail "keys without 2 replicas: $(awk 'NF != 4' "$D/map.txt" | head -3)"
bad=""
for i in 0 1 2; do
    eval "ep=\$EP$i"
    "$CTL" --servers "$ep" dump --out "$D/dump.$i" 2>/dev/null || fail "dump of server $i failed"
    awk -v me=$i 'NR == FNR { e[$1] = $2; next } { for (j = 3; j <= NF; j++) if ($j == me) print $1, e[$1] }' \
        "$D/expect.txt" "$D/map.txt" | sort -n -k1,1 >"$D/want.$i"
    if ! cmp -s "$D/want.$i" "$D/dump.$i"; then
        awk 'NR == FNR { e[$1] = $2; next } { d[$1] = $2 }
             END { for (k in e) if (!(k in d) || d[k] != e[k]) print k, e[k], (k in d) ? d[k] : "missing";
                   for (k in d) if (!(k in e)) print k, "none", d[k] }' "$D/want.$i" "$D/dump.$i" >"$D/diff.$i"
        head -5 "$D/diff.$i" | sed 's/^/  key, expected, stored: /'
        echo "  server $i: $(wc -l <"$D/diff.$i") of its $(wc -l <"$D/want.$i") keys differ from the exact sums"
        bad="$bad $i"
        continue
    fi
    echo "  server $i: all $(wc -l <"$D/want.$i") keys it replicates hold the exact sums"
done
if [ -n "$bad" ]; then
    # what the next look needs (the temporary directory goes with the run):
    # the push lines holding the first wrong key, each server's accounting
    # and how many pushes it refused and why
    i=${bad# }; i=${i%% *}
    k=$(head -1 "$D/diff.$i" | cut -d' ' -f1)
    grep -n "\(^\| \)$k:" "$D"/push.*.txt | head -5 | sed 's/^/  push line with key '"$k"': /'
    awk -v k="$k" '$1 == k' "$D/map.txt" | sed 's/^/  key, range, replicas: /'
    for j in 0 1 2; do
        eval "ep=\$EP$j"
        "$CTL" --servers "$ep" stats 2>&1 | sed "s/^/  stats $j: /"
        echo "  server $j refused: $(grep -c 'rejected request' "$D/server.$j.log") logged, of which" \
            "$(grep -c 'before this server process joined' "$D/server.$j.log") split before its join;" \
            "joins: $(grep -c 'copy complete' "$D/server.$j.log"), forwards: $(grep -c 'forward' "$D/server.$j.log")"
    done
    fail "servers$bad do not hold the exact sums"
fi
# the servers' own accounting: no push counted lost, and for every client
# process each server applied every push below its low-water mark (no
# acknowledged push missing in between)
for i in 0 1 2; do
    eval "ep=\$EP$i"
    "$CTL" --servers "$ep" stats >"$D/stats.$i" 2>&1 || fail "stats of server $i failed: $(cat "$D/stats.$i")"
    grep -q "^server=0 .* lost_pushes=0 " "$D/stats.$i" || fail "server $i counts lost pushes: $(head -1 "$D/stats.$i")"
    awk '$1 == "client" { a = s = ""; for (i = 2; i <= NF; i++) { split($i, kv, "=");
             if (kv[1] == "applied") a = kv[2]; if (kv[1] == "applied_seq") s = kv[2] }
             n++; if (a == "" || s == "" || a != s) { print; bad = 1 } }
         END { exit bad || n == 0 }' "$D/stats.$i" >"$D/stats.bad.$i" ||
        fail "server $i: a client's applied pushes differ from its low-water mark (or no client): $(head -3 "$D/stats.bad.$i")"
done
echo "  stats: 0 pushes lost on every server; every client's applied == its low-water mark"
sed 's/^/  table: /' "$D/table.txt"
grep -h "join at version .* copy complete" "$D"/server.*.log | sed 's/.*info: /  /'
echo "  peer links (donors to joiners): $(cat "$D"/peer*.stats | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] ~ /dropped|duplicated/) s[kv[1]] += kv[2] } } END { for (k in s) printf "%s %d ", k, s[k] }')"
echo "ok: every server killed and rejoined in turn under load; every replica exact ($(wc -l <"$D/expect.txt") keys, $((P * LINES)) lines, faults: $FAULTS)"
echo "it_replica_join: ok"
