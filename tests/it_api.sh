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
# About 50 s (timeouts and the proxy's drops); run in the ASan pass too: it is the
# only test that feeds the client corrupted replies.
. "$(dirname "$0")/lib.sh"
D=$TMP
A="$ZPS_BIN/it_api"
OPTS="--table-dim 2 --optimizer sgd --lr 1"

"$A" args >"$D/args.out" 2>&1 || fail "args: $(cat "$D/args.out")"
cat "$D/args.out"

start_servers 2 $OPTS
"$A" keys "$SERVERS" >"$D/keys.out" 2>&1 || fail "keys: $(cat "$D/keys.out")"
cat "$D/keys.out"

# ---- dead and restarted server ----------------------------------------------------------
# restart_server1 EXTRA...: server 1 again on its port, rank 1 of 2
EP1=${SERVERS#*,}
restart_server1() {
    rm -f "$D/ready.1b"
    "$ZPS_BIN/zps-server" --bind "$EP1" --rank 1 --num-servers 2 --ready-file "$D/ready.1b" \
        "$@" >>"$D/server1b.out" 2>>"$D/server1b.log" &
    S1=$!
    PIDS="$PIDS $S1"
    t=0
    while [ ! -s "$D/ready.1b" ]; do
        t=$((t + 1)); [ $t -gt 300 ] && fail "server 1 did not restart on $EP1"
        kill -0 $S1 2>/dev/null || fail "server 1 did not restart on $EP1: $(tail -3 "$D/server1b.log")"
        sleep 0.1
    done
}
wait_file() {
    t=0
    while [ ! -e "$1" ]; do
        t=$((t + 1)); [ $t -gt 600 ] && fail "$1 did not appear: $(cat "$D/dead.out")"
        kill -0 "$2" 2>/dev/null || { wait "$2"; fail "it_api dead exited early: $(cat "$D/dead.out")"; }
        sleep 0.1
    done
}
# run_dead WHAT EXTRA-OPTIONS: kill server 1, restart it (with extra options)
run_dead() {
    local extra=("$@")
    rm -f "$D"/stage1 "$D"/stage2 "$D"/go1 "$D"/go2
    "$A" dead "$SERVERS" "$D" >"$D/dead.out" 2>&1 &
    apid=$!
    wait_file "$D/stage1" $apid
    set -- $SERVER_PIDS
    kill -KILL "$2"; wait "$2" 2>/dev/null
    touch "$D/go1"
    wait_file "$D/stage2" $apid
    restart_server1 $OPTS "${extra[@]}"
    SERVER_PIDS="${SERVER_PIDS%% *} $S1"
    echo "$WHAT" >"$D/go2.tmp" && mv "$D/go2.tmp" "$D/go2"
    wait $apid || fail "it_api dead ($WHAT): $(cat "$D/dead.out")"
    cat "$D/dead.out"
}
SERVER_PIDS=$(echo $SERVER_PIDS)
WHAT=same run_dead
# the same port, another dim (a different job's server): refused
WHAT=dim run_dead --table-dim 3
echo "ok: a dead server fails calls within the timeout; a restarted one is used again, one with another dim refused"

# ---- through fault-injecting proxies -------------------------------------------------------
start_servers 2 $OPTS
PX=""
i=0
for ep in $(echo "$SERVERS" | tr ',' ' '); do
    "$ZPS_BIN/zps-proxy" --listen tcp://127.0.0.1:0 --upstream "$ep" --seed $((40 + i)) \
        --drop 0.1 --dup 0.2 --reorder 0.2 --reorder-k 3 --max-hold-ms 300 \
        --ready-file "$D/px$i.ready" >"$D/px$i.out" 2>"$D/px$i.log" &
    PIDS="$PIDS $!"
    t=0; while [ ! -s "$D/px$i.ready" ]; do t=$((t + 1)); [ $t -gt 100 ] && fail "proxy $i not ready"; sleep 0.1; done
    PX="${PX:+$PX,}$(cat "$D/px$i.ready")"
    i=$((i + 1))
done
"$A" proxy "$PX" >"$D/proxy.out" 2>&1 || fail "proxy: $(cat "$D/proxy.out")"
cat "$D/proxy.out"

# ---- hostile servers ------------------------------------------------------------------------
start_servers 1 $OPTS
IT_API_REAL=$SERVERS "$A" hostile >"$D/hostile.out" 2>&1 || fail "hostile: $(cat "$D/hostile.out")"
cat "$D/hostile.out"
echo "it_api: all passed"
