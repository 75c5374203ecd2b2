# Shared helpers for the integration scripts (sourced).
# ZPS_BIN: directory of the binaries under test (bin or build/asan/bin).
set -u
ZPS_BIN=${ZPS_BIN:-bin}
case $ZPS_BIN in /*) ;; *) ZPS_BIN=$(pwd)/$ZPS_BIN ;; esac
TMP=$(mktemp -d "${TMPDIR:-/tmp}/zps-it.XXXXXX")
export TMPDIR=$TMP  # what the programs under test leave in $TMPDIR (e.g. zps-launch's kept logs) goes away with it
PIDS=""

cleanup() {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.2
    for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT INT TERM

fail() {
    echo "FAIL: $*" >&2
    for f in "$TMP"/*.log; do
        [ -f "$f" ] || continue
        echo "--- last lines of $f" >&2
        tail -n 15 "$f" >&2
    done
    exit 1
}

# start_servers S [server options...]: starts S servers on free ports;
# sets SERVERS (comma list) and SERVER_PIDS.  Their files are
# $TMP/${SRV_TAG}ready.I, ${SRV_TAG}server.I.out and .log (SRV_TAG: empty
# unless set, to keep several groups' logs apart).
start_servers() {
    n=$1; shift
    SERVERS=""
    SERVER_PIDS=""
    i=0
    while [ "$i" -lt "$n" ]; do
        rm -f "$TMP/${SRV_TAG:-}ready.$i"
        "$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 --rank "$i" --num-servers "$n" \
            --ready-file "$TMP/${SRV_TAG:-}ready.$i" "$@" >"$TMP/${SRV_TAG:-}server.$i.out" \
            2>"$TMP/${SRV_TAG:-}server.$i.log" &
        pid=$!
        PIDS="$PIDS $pid"
        SERVER_PIDS="$SERVER_PIDS $pid"
        i=$((i + 1))
    done
    i=0
    while [ "$i" -lt "$n" ]; do
        t=0
        while [ ! -s "$TMP/${SRV_TAG:-}ready.$i" ]; do
            t=$((t + 1))
            [ "$t" -gt 300 ] && fail "server $i did not become ready in 30 s"
            sleep 0.1
        done
        ep=$(cat "$TMP/${SRV_TAG:-}ready.$i")
        SERVERS="${SERVERS:+$SERVERS,}$ep"
        i=$((i + 1))
    done
}

# wait_exit PID SECONDS: waits for PID to exit; echoes its status, or fails.
wait_exit() {
    t=0
    while kill -0 "$1" 2>/dev/null; do
        t=$((t + 1))
        [ "$t" -gt $(($2 * 10)) ] && fail "process $1 still running after $2 s"
        sleep 0.1
    done
    wait "$1"
}

# push_workload SEED0 KEYS: the exact-sum workload of the exactly-once and
# replication scripts: P (the caller's) files $TMP/push.$p.txt of $LINES
# lines, each 1..12 KEY:GRADIENT pairs (integer gradients -8..8; keys below
# KEYS, a fifth of them scattered over 64 bits), seeded SEED0 + p; then
# $TMP/expect.txt, each key's independently computed sum (sgd with lr 1
# makes a weight minus the sum of its gradients), and $TMP/keys.txt
push_workload() {
    p=0
    while [ $p -lt "$P" ]; do
        awk -v seed=$(($1 + p)) -v lines="$LINES" -v keys="$2" 'BEGIN { srand(seed); for (l = 0; l < lines; l++) {
            n = 1 + int(rand() * 12); s = "";
            for (i = 0; i < n; i++) { k = int(rand() * keys); if (rand() < 0.2) k = k * 2654435761 + 12345;
                s = s (i ? " " : "") sprintf("%.0f", k) ":" (int(rand() * 17) - 8) }
            print s } }' >"$TMP/push.$p.txt"
        p=$((p + 1))
    done
    cat "$TMP"/push.*.txt | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, ":"); sum[kv[1]] -= kv[2] } }
        END { for (k in sum) { v = sum[k]; if (v == 0) v = 0; printf "%s %.0f\n", k, v } }' | sort -n -k1,1 >"$TMP/expect.txt"
    cut -d' ' -f1 "$TMP/expect.txt" >"$TMP/keys.txt"
}

# wait_file FILE WHAT [SECONDS]: until FILE exists and is not empty (10 s)
wait_file() {
    t=0
    while [ ! -s "$1" ]; do
        t=$((t + 1)); [ $t -gt $((${3:-10} * 10)) ] && fail "$2 not ready in ${3:-10} s"
        sleep 0.1
    done
}

# wait_log FILE PATTERN SECONDS WHAT: until a line of FILE matches PATTERN
wait_log() {
    t=0
    until grep -q "$2" "$1" 2>/dev/null; do
        t=$((t + 1)); [ $t -gt $(($3 * 10)) ] && fail "$4 (no '$2' in $1 after $3 s)"
        sleep 0.1
    done
}
