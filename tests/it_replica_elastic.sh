#!/bin/sh
# Growing and shrinking a running replicated job (zps-ctl add-server,
# remove-server): the ranges concerned move while the job runs, nothing
# acknowledged is lost, nothing is applied twice, and every key's weight is
# on the servers the final range table names.
#   case 1: 2 servers, 1 replica (every key lives on one server only): a
#           third server is added, then server 0 is removed;
#   case 2: 3 servers, 2 replicas: a fourth is added, then server 1 removed.
# Each server (the added one too) announces a zps-proxy in front of it
# (drop, duplicate and reorder 5% both ways), so the clients' pushes and
# pulls AND the servers' own traffic (a donor's snapshot pages and
# forwarded pushes to the server taking its ranges) cross faulty links.
# 4 zps-ctl pushers push a known workload with sgd, lr 1, integer
# gradients: exact in any order.  At the end: every pusher had every line
# acknowledged, the removed server exited with status 0 after the
# coordinator retired it, every replica the table names holds exactly the
# independently computed sum of each of its keys and no rows of ranges it
# left (deleted --left-rows-ms after it left them), and a client given only
# the coordinator (no --servers) pulls every key's exact sum.
#   case 3: training (zps-launch --replicas 1, 2 servers, 2 workers): a
#           server is added and server 0 removed while the workers train;
#           the job finishes (exit 0) and worker 0's test logloss and AUC
#           are within 1% of an undisturbed run.
. "$(dirname "$0")/lib.sh"
D=$TMP
CTL="$ZPS_BIN/zps-ctl"
P=4 LINES=${ELASTIC_LINES:-300}
JOB="--table-dim 1 --optimizer sgd --lr 1"
FAULTS=${ELASTIC_FAULTS-"--drop 0.05 --dup 0.05 --reorder 0.05"}

push_workload 51 5000

c2s() { cat "$D"/px.$C.*.stats 2>/dev/null | sed -n 's/^c2s_in=\([0-9]*\) .*/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }
running() { for q in $PP; do kill -0 "$q" 2>/dev/null && return 0; done; return 1; }
wait_msgs() {
    t=0
    while [ "$(c2s)" -lt "$1" ]; do
        running || fail "case $C: the pushers finished before $1 client messages: make the workload larger"
        t=$((t + 1)); [ $t -gt 1200 ] && fail "case $C: no progress: $(c2s) client messages after 60 s"
        sleep 0.05
    done
}

# server C I: server I of case C on its own port, behind its proxy, which it announces
server() {
    port=$((PORT0 + $2))
    "$ZPS_BIN/zps-proxy" --listen tcp://127.0.0.1:0 --upstream "tcp://127.0.0.1:$port" --seed $((100 * $1 + $2)) \
        $FAULTS --reorder-k 3 --max-hold-ms 300 \
        --ready-file "$D/px.$1.$2.ready" --stats-file "$D/px.$1.$2.stats" >/dev/null 2>&1 &
    PIDS="$PIDS $!"
    wait_file "$D/px.$1.$2.ready" "proxy $2"
    eval "PX$2=$(cat "$D/px.$1.$2.ready")"
    eval "px=\$PX$2"
    "$ZPS_BIN/zps-server" --bind "tcp://127.0.0.1:$port" --announce "$px" --rank "$2" --num-servers "$S" \
        --ready-file "$D/ready.$1.$2" $JOB --coordinator "$COORD" --left-rows-ms 1000 \
        >/dev/null 2>"$D/server.$1.$2.log" &
    eval "SPID$2=$!"; PIDS="$PIDS $!"
    wait_file "$D/ready.$1.$2" "server $2"
}

# elastic CASE S R ADD REMOVE
elastic() {
    C=$1 S=$2 R=$3 ADD=$4 REM=$5
    PORT0=$((18000 + ($$ * 7 + C * 10) % 14000)) # as it_replica_join: 18000..31999
    rm -f "$D/coord.$C.ready"
    "$ZPS_BIN/zps-coord" --listen tcp://127.0.0.1:0 --num-servers "$S" --replicas "$R" \
        --ready-file "$D/coord.$C.ready" >/dev/null 2>"$D/coord.$C.log" &
    PIDS="$PIDS $!"
    wait_file "$D/coord.$C.ready" "coordinator"
    COORD=$(cat "$D/coord.$C.ready")
    i=0; PX=""
    while [ $i -lt "$S" ]; do
        server "$C" $i
        eval "PX=\${PX:+\$PX,}\$PX$i"
        i=$((i + 1))
    done
    PP=""
    p=0
    while [ $p -lt $P ]; do
        "$CTL" --servers "$PX" --coordinator "$COORD" --rank $((p + 1)) --retry 0.2 --server-timeout 60 \
            push --file "$D/push.$p.txt" --window 8 >"$D/pusher.$C.$p.out" 2>"$D/pusher.$C.$p.log" &
        PP="$PP $!"; PIDS="$PIDS $!"
        p=$((p + 1))
    done
    wait_msgs 400
    if [ "$C" = 1 ]; then
        # refusals name their reason, change nothing, and exit 1
        v0=$("$CTL" --coordinator "$COORD" table | sed -n 's/^version \([0-9]*\) .*/\1/p')
        refused() { # WHAT PATTERN zps-ctl args...
            what=$1 pat=$2; shift 2
            if "$CTL" --coordinator "$COORD" --server-timeout 5 "$@" >"$D/refused.out" 2>&1; then
                fail "case $C: $what was accepted: $(cat "$D/refused.out")"
            fi
            grep -q "$pat" "$D/refused.out" || fail "case $C: $what: $(cat "$D/refused.out")"
        }
        refused "add-server of an endpoint nobody announced" "no live server announces" add-server tcp://127.0.0.1:1
        refused "remove-server of a rank not in the table" "not in the range table" remove-server 3
        refused "add-server of a server already holding its share" "nothing to move" add-server 1
        v1=$("$CTL" --coordinator "$COORD" table | sed -n 's/^version \([0-9]*\) .*/\1/p')
        [ "$v0" = "$v1" ] || fail "case $C: a refused reconfiguration changed the table ($v0 -> $v1)"
        echo "case $C: refusals: unknown endpoint, a rank not in the table, nothing to move (table unchanged)"
    fi
    server "$C" "$ADD"
    eval "ep=\$PX$ADD"
    "$CTL" --coordinator "$COORD" --server-timeout 60 add-server "$ep" >"$D/add.$C.out" 2>&1 ||
        fail "case $C: add-server failed: $(cat "$D/add.$C.out")"
    echo "case $C: $(grep 'takes' "$D/add.$C.out"); $(tail -1 "$D/add.$C.out")"
    running || fail "case $C: the pushers finished before server $ADD had joined: make the workload larger"
    wait_msgs $(($(c2s) + 250))
    "$CTL" --coordinator "$COORD" --server-timeout 60 remove-server "$REM" >"$D/remove.$C.out" 2>&1 ||
        fail "case $C: remove-server failed: $(cat "$D/remove.$C.out")"
    echo "case $C: $(grep 'move' "$D/remove.$C.out" | head -1); $(tail -1 "$D/remove.$C.out")"
    running || fail "case $C: the pushers finished before server $REM was drained: make the workload larger"
    eval "rpid=\$SPID$REM"
    wait_exit "$rpid" 30; rc=$?
    [ "$rc" = 0 ] || fail "case $C: the removed server $REM exited with status $rc, not 0"
    grep -q "removed from the job by request" "$D/server.$C.$REM.log" ||
        fail "case $C: server $REM did not say it was removed by request"
    p=0
    for q in $PP; do
        wait "$q" || fail "case $C: pusher $p failed: $(tail -3 "$D/pusher.$C.$p.log")"
        grep -q "^pushed $LINES lines" "$D/pusher.$C.$p.out" || fail "case $C: pusher $p: $(cat "$D/pusher.$C.$p.out")"
        p=$((p + 1))
    done
    # where the table says: every replica of every key holds its exact sum
    "$CTL" --coordinator "$COORD" table >"$D/table.$C.txt" || fail "case $C: table failed"
    "$CTL" --coordinator "$COORD" table --file "$D/keys.txt" >"$D/map.$C.txt" || fail "case $C: table --file failed"
    grep -q ' lost' "$D/map.$C.txt" && fail "case $C: keys without a replica"
    awk -v rem="$REM" '{ for (j = 3; j <= NF; j++) if ($j == rem) { print "key " $1 " still on the removed server"; exit 1 } }' \
        "$D/map.$C.txt" || fail "case $C: the table still names server $REM"
    checked=0
    for i in $(seq 0 "$ADD"); do
        [ "$i" = "$REM" ] && continue
        ep="tcp://127.0.0.1:$((PORT0 + i))" # (its own port: the inspection needs no faults)
        "$CTL" --servers "$ep" dump --out "$D/dump.$C.$i" 2>"$D/dump.$C.$i.err" ||
            fail "case $C: dump of server $i failed: $(cat "$D/dump.$C.$i.err")"
        awk -v me="$i" 'NR == FNR { e[$1] = $2; next } { for (j = 3; j <= NF; j++) if ($j == me) print $1, e[$1] }' \
            "$D/expect.txt" "$D/map.$C.txt" | sort -n -k1,1 >"$D/want.$C.$i"
        # rows of ranges it gave away are deleted --left-rows-ms (1 s) after
        # it left them: then it holds its replicas' keys only
        t=0
        while awk 'NR == FNR { w[$1] = 1; next } !($1 in w) { found = 1; exit } END { exit !found }' \
            "$D/want.$C.$i" "$D/dump.$C.$i"; do
            t=$((t + 1)); [ $t -gt 100 ] && fail "case $C: server $i still holds rows of ranges it left, 10 s after: $(grep -c . "$D/dump.$C.$i") rows"
            sleep 0.1
            "$CTL" --servers "$ep" dump --out "$D/dump.$C.$i" 2>"$D/dump.$C.$i.err" ||
                fail "case $C: dump of server $i failed: $(cat "$D/dump.$C.$i.err")"
        done
        awk 'NR == FNR { w[$1] = 1; next } ($1 in w) { print $1, $2 + 0 }' "$D/want.$C.$i" "$D/dump.$C.$i" |
            sort -n -k1,1 >"$D/have.$C.$i"
        if ! cmp -s "$D/want.$C.$i" "$D/have.$C.$i"; then
            awk 'NR == FNR { e[$1] = $2; next } { d[$1] = $2 }
                 END { for (k in e) if (!(k in d) || d[k] != e[k]) print k, e[k], (k in d) ? d[k] : "missing" }' \
                "$D/want.$C.$i" "$D/have.$C.$i" | head -5 >"$D/diff.$C.$i"
            fail "case $C: server $i does not hold the exact sums of its keys (key want have): $(cat "$D/diff.$C.$i")"
        fi
        checked=$((checked + $(wc -l <"$D/want.$C.$i")))
    done
    # the servers' accounting: nothing lost, and every client's applied
    # pushes == its low-water mark (no acknowledged push missing)
    for i in $(seq 0 "$ADD"); do
        [ "$i" = "$REM" ] && continue
        ep="tcp://127.0.0.1:$((PORT0 + i))"
        "$CTL" --servers "$ep" stats >"$D/stats.$C.$i" 2>&1 ||
            fail "case $C: stats of server $i failed: $(cat "$D/stats.$C.$i")"
        grep -q "^server=0 .* lost_pushes=0 " "$D/stats.$C.$i" ||
            fail "case $C: server $i counts lost pushes: $(head -1 "$D/stats.$C.$i")"
        awk '$1 == "client" { a = s = ""; for (i = 2; i <= NF; i++) { split($i, kv, "=");
                 if (kv[1] == "applied") a = kv[2]; if (kv[1] == "applied_seq") s = kv[2] }
                 n++; if (a == "" || s == "" || a != s) { print; bad = 1 } }
             END { exit bad || n == 0 }' "$D/stats.$C.$i" >"$D/stats.bad.$C.$i" ||
            fail "case $C: server $i: a client's applied pushes differ from its low-water mark: $(head -3 "$D/stats.bad.$C.$i")"
    done
    nk=$(wc -l <"$D/keys.txt")
    [ "$checked" -eq $((nk * R)) ] || fail "case $C: $checked key replicas checked, expected $((nk * R))"
    # a client that knows only the coordinator reads every key through the table
    "$CTL" --coordinator "$COORD" --server-timeout 60 pull "$(paste -sd, "$D/keys.txt")" >"$D/pull.$C.txt" 2>"$D/pull.$C.err" ||
        fail "case $C: pull through the coordinator failed: $(cat "$D/pull.$C.err")"
    awk '{ print $1, $2 + 0 }' "$D/pull.$C.txt" | sort -n -k1,1 | cmp -s - "$D/expect.txt" ||
        fail "case $C: a pull through the coordinator does not give the exact sums"
    echo "case $C: ok ($S servers, $R replicas; server $ADD added, server $REM removed while $P pushers ran:" \
        "$P x $LINES lines acknowledged, $checked key replicas exact where the table says, $nk keys pulled exact" \
        "through the coordinator; $(c2s) client messages through faulty proxies)"
    for q in $PIDS; do kill "$q" 2>/dev/null; done
    wait 2>/dev/null
    PIDS=""
}

case " ${ELASTIC_CASES:-1 2 3} " in *" 1 "*) elastic 1 2 1 2 0 ;; esac
case " ${ELASTIC_CASES:-1 2 3} " in *" 2 "*) elastic 2 3 2 3 1 ;; esac
case " ${ELASTIC_CASES:-1 2 3} " in *" 3 "*) ;; *) echo "it_replica_elastic: ok (cases ${ELASTIC_CASES:-})"; exit 0 ;; esac

# ---- case 3: training -----------------------------------------------------------------
ROWS=${ELASTIC_ROWS:-600000}
"$ZPS_BIN/zps-datagen" ctr --rows "$ROWS" --test-rows 40000 --features 20000 --nnz 20 --seed 7 \
    --out "$D/ctr" >"$D/datagen.log" 2>&1 || fail "datagen failed: $(cat "$D/datagen.log")"
TRAIN="--model lr --epochs 6 --train $D/ctr.train --test $D/ctr.test --cache-dir $D/cache"
LAUNCH="$(dirname "$0")/../scripts/zps-launch"
export ZPS_BIN
metric() { grep "epoch 6/6 test:" "$2" | tail -1 | sed -n "s/.* $1 \([0-9.]*\).*/\1/p"; }
train() { # NAME
    "$LAUNCH" --bin "$ZPS_BIN" --servers 2 --workers 2 --replicas 1 --log-dir "$D/$1" --timeout 300 \
        -- $TRAIN >"$D/$1.out" 2>&1 &
    LP=$!
    PIDS="$PIDS $LP"
}
train A
wait "$LP" || fail "run A failed: $(tail -5 "$D/A.out")"
train B
t=0
until grep -q "epoch 1/6 done" "$D/B/worker.0.log" 2>/dev/null; do
    t=$((t + 1)); [ $t -gt 1200 ] && fail "B: worker 0 did not finish pass 1 in 120 s"
    kill -0 $LP 2>/dev/null || fail "B: the job ended before pass 1 was done: $(tail -5 "$D/B.out")"
    sleep 0.1
done
COORD=$(sed -n 's/.*coordinator at \(tcp:[^ ]*\).*/\1/p' "$D/B.out" | head -1)
[ -n "$COORD" ] || fail "B: no coordinator address in the launcher's output: $(head -5 "$D/B.out")"
# the added server takes the job's options, as the launcher gives its own
"$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 --rank 2 --num-servers 2 --num-workers 2 \
    --ready-file "$D/B.ready.2" --coordinator "$COORD" $TRAIN >/dev/null 2>"$D/B.server.2.log" &
S2=$!; PIDS="$PIDS $S2"
wait_file "$D/B.ready.2" "B: server 2"
"$CTL" --coordinator "$COORD" --server-timeout 60 add-server "$(cat "$D/B.ready.2")" >"$D/B.add.out" 2>&1 ||
    fail "B: add-server failed: $(cat "$D/B.add.out")"
kill -0 $LP 2>/dev/null || fail "B: the job ended before server 2 had joined: make it longer"
"$CTL" --coordinator "$COORD" --server-timeout 60 remove-server 0 >"$D/B.remove.out" 2>&1 ||
    fail "B: remove-server failed: $(cat "$D/B.remove.out")"
kill -0 $LP 2>/dev/null || fail "B: the job ended before server 0 was drained: make it longer"
echo "B: $(grep takes "$D/B.add.out"); $(tail -1 "$D/B.remove.out")"
wait "$LP" || fail "B: the job failed: $(tail -5 "$D/B.out")"
grep -q "server 0 retired" "$D/B/coord.log" || fail "B: the coordinator did not retire server 0"
# (server 0 lingers a few seconds for late pushes: the launcher reports it
# leaving if that ends before the job does)
kill -TERM $S2
wait_exit "$S2" 30; rc=$?
[ "$rc" = 0 ] || fail "B: the added server exited with status $rc"
la=$(metric logloss "$D/A/worker.0.log") aa=$(metric auc "$D/A/worker.0.log")
lb=$(metric logloss "$D/B/worker.0.log") ab=$(metric auc "$D/B/worker.0.log")
[ -n "$la" ] && [ -n "$lb" ] && [ -n "$aa" ] && [ -n "$ab" ] || fail "no final test metrics: A '$la' '$aa', B '$lb' '$ab'"
awk -v a="$la" -v b="$lb" -v x="$aa" -v y="$ab" 'BEGIN {
    if (b > a * 1.01 || y < x * 0.99) exit 1 }' ||
    fail "B: test logloss/AUC $lb/$ab not within 1% of the undisturbed run's $la/$aa"
echo "case 3: ok (training: undisturbed logloss/AUC $la/$aa; a server added and server 0 removed while training: $lb/$ab)"
echo "it_replica_elastic: ok"
