#!/bin/bash
# The public C API (worker/zps.h) under misuse and faults, through
# bin/it_api (tests/it_api.c, whose header lists every check):
# - args: NULL arguments to every function, empty and bad server lists;
# - keys: two servers (raw table, dim 2, sgd lr 1): zero keys, NULL arrays,
#   unsorted / duplicate / reserved keys refused before anything is sent
#   (push counters unchanged, output untouched), NaN/inf gradients refused,
#   300000 keys in one call, exact values, destroy twice; a second client of
#   the same rank refused (EPERM, naming zps_client_options_t.rank), one of
#   another rank pushing alongside (every push counted);
# - dead: server 1 killed mid-session: pulls and pushes touching it fail
#   with ETIMEDOUT/EIO naming server 1 within the timeout, server 0 still
#   answers; server 1 restarted on its port: calls recover (its keys at 0);
#   then restarted with another --table-dim: pulls are refused, never
#   written past the caller's buffer;
# - proxy: through zps-proxy (10% drops each way, duplicates, reordering):
#   20 pushes applied exactly once (exact weights);
# - hostile: a silent and a garbage-speaking server (connect fails within
#   its timeout), a relay corrupting replies after the hello (cut, dropped,
#   extra, flipped frames): only 0 or errors with a text, no crash, no hang.
# About 20 s (timeouts and the proxy's drops; the parts run at the same
# time); run in the ASan pass too: it is the only test that feeds the client
# corrupted replies.
. "$(dirname "$0")/lib.sh"
D=$TMP
A="$ZPS_BIN/it_api"
OPTS="--table-dim 2 --optimizer sgd --lr 1"

# The four parts below (dead server, dim change, proxies, hostile servers)
# each have their own servers and run at the same time: they mostly wait
# for timeouts and the proxies' drops (about 50 s one after the other, 20 s
# together).  Each part runs in a subshell that writes its output to
# $D/PART.out and its verdict to $D/PART.rc; the processes it starts are
# listed in $D/PART.pids (killed at exit, whatever happened).
"$A" args >"$D/args.out" 2>&1 || fail "args: $(cat "$D/args.out")"
cat "$D/args.out"

start_servers 2 $OPTS
"$A" keys "$SERVERS" >"$D/keys.out" 2>&1 || fail "keys: $(cat "$D/keys.out")"
cat "$D/keys.out"
DEAD_SERVERS=$SERVERS DEAD_PIDS=$(echo $SERVER_PIDS)
# ---- dead and restarted server: once on the port again ("same"), once with
# another --table-dim ("dim", a different job's server), each on its own pair
SRV_TAG=dim. start_servers 2 $OPTS
DIM_SERVERS=$SERVERS DIM_PIDS=$(echo $SERVER_PIDS)
SRV_TAG=proxy. start_servers 2 $OPTS
PROXY_SERVERS=$SERVERS
SRV_TAG=hostile. start_servers 1 $OPTS
HOSTILE_SERVERS=$SERVERS

# part WHAT: in a subshell, $D/WHAT.pids collects its processes
part_pid() { echo "$1" >>"$D/$WHAT.pids"; }
# restart_server1 EXTRA...: server 1 again on its port, rank 1 of 2
restart_server1() {
    rm -f "$D/$WHAT.ready.1b"
    "$ZPS_BIN/zps-server" --bind "$EP1" --rank 1 --num-servers 2 --ready-file "$D/$WHAT.ready.1b" \
        "$@" >>"$D/$WHAT.server1b.out" 2>>"$D/$WHAT.server1b.log" &
    S1=$!
    part_pid $S1
    t=0
    while [ ! -s "$D/$WHAT.ready.1b" ]; do
        t=$((t + 1)); [ $t -gt 300 ] && fail "$WHAT: server 1 did not restart on $EP1"
        kill -0 $S1 2>/dev/null || fail "$WHAT: server 1 did not restart on $EP1: $(tail -3 "$D/$WHAT.server1b.log")"
        sleep 0.1
    done
}
# wait_stage FILE PID: until FILE exists, failing if PID (the it_api run)
# exits first (lib.sh's wait_file watches a file only)
wait_stage() {
    t=0
    while [ ! -e "$1" ]; do
        t=$((t + 1)); [ $t -gt 600 ] && fail "$1 did not appear: $(cat "$D/$WHAT.dead.out")"
        kill -0 "$2" 2>/dev/null || { wait "$2"; fail "it_api dead ($WHAT) exited early: $(cat "$D/$WHAT.dead.out")"; }
        sleep 0.1
    done
}
# run_dead SERVERS "PID0 PID1" EXTRA-OPTIONS: kill server 1, restart it (with
# extra options); the stage files are in $D/$WHAT/
run_dead() {
    local servers=$1 pids=$2; shift 2
    local extra=("$@") dir="$D/$WHAT"
    mkdir -p "$dir"
    EP1=${servers#*,}
    "$A" dead "$servers" "$dir" >"$D/$WHAT.dead.out" 2>&1 &
    apid=$!
    part_pid $apid
    wait_stage "$dir/stage1" $apid
    set -- $pids
    kill -KILL "$2"
    # gone (or a zombie of the main shell, which started it): its port is free
    t=0
    while [ -e "/proc/$2" ] && [ "$(awk '{ print $3 }' "/proc/$2/stat" 2>/dev/null)" != Z ]; do
        t=$((t + 1)); [ $t -gt 100 ] && fail "$WHAT: server 1 ($2) still runs 10 s after kill -9"
        sleep 0.1
    done
    touch "$dir/go1"
    wait_stage "$dir/stage2" $apid
    restart_server1 $OPTS "${extra[@]}"
    echo "$WHAT" >"$dir/go2.tmp" && mv "$dir/go2.tmp" "$dir/go2"
    wait $apid || fail "it_api dead ($WHAT): $(cat "$D/$WHAT.dead.out")"
    cat "$D/$WHAT.dead.out"
}
# ---- through fault-injecting proxies
run_proxy() {
    PX=""
    i=0
    for ep in $(echo "$PROXY_SERVERS" | tr ',' ' '); do
        "$ZPS_BIN/zps-proxy" --listen tcp://127.0.0.1:0 --upstream "$ep" --seed $((40 + i)) \
            --drop 0.1 --dup 0.2 --reorder 0.2 --reorder-k 3 --max-hold-ms 300 \
            --ready-file "$D/px$i.ready" >"$D/px$i.out" 2>"$D/proxy.px$i.log" &
        part_pid $!
        t=0; while [ ! -s "$D/px$i.ready" ]; do t=$((t + 1)); [ $t -gt 100 ] && fail "proxy $i not ready"; sleep 0.1; done
        PX="${PX:+$PX,}$(cat "$D/px$i.ready")"
        i=$((i + 1))
    done
    "$A" proxy "$PX" >"$D/proxy.run" 2>&1 || fail "proxy: $(cat "$D/proxy.run")"
    cat "$D/proxy.run"
}
# ---- hostile servers
run_hostile() {
    IT_API_REAL=$HOSTILE_SERVERS "$A" hostile >"$D/hostile.run" 2>&1 || fail "hostile: $(cat "$D/hostile.run")"
    cat "$D/hostile.run"
}
# part_kill WHAT: stops what part WHAT started
part_kill() {
    for p in $(cat "$D/$1.pids" 2>/dev/null); do kill -TERM "$p" 2>/dev/null; done
    sleep 0.2
    for p in $(cat "$D/$1.pids" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
}
# start_part WHAT COMMAND...: COMMAND in a background subshell
PARTS="" PART_PIDS=""
start_part() {
    WHAT=$1; shift
    : >"$D/$WHAT.pids"
    (
        trap 'part_kill $WHAT' EXIT
        trap 'exit 1' INT TERM
        "$@" >"$D/$WHAT.out" 2>&1
        echo $? >"$D/$WHAT.rc"
    ) &
    PARTS="$PARTS $WHAT"
    PART_PIDS="$PART_PIDS $!"
}
trap 'for w in $PARTS; do part_kill $w; done; cleanup' EXIT
start_part same run_dead "$DEAD_SERVERS" "$DEAD_PIDS"
start_part dim run_dead "$DIM_SERVERS" "$DIM_PIDS" --table-dim 3
start_part proxy run_proxy
start_part hostile run_hostile
for p in $PART_PIDS; do wait "$p"; done
# reap the servers the parts killed (quietly)
for p in ${DEAD_PIDS#* } ${DIM_PIDS#* }; do
    [ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" = Z ] && wait "$p" 2>/dev/null
done
bad=""
for w in $PARTS; do
    cat "$D/$w.out"
    [ "$(cat "$D/$w.rc" 2>/dev/null)" = 0 ] || bad="$bad $w"
done
[ -z "$bad" ] || fail "part(s)$bad failed (their output above)"
echo "ok: a dead server fails calls within the timeout; a restarted one is used again, one with another dim refused"
echo "it_api: all passed"
