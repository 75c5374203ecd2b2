#!/bin/sh
# CURVE: only clients whose key is allowed get in; traffic is encrypted
# (a capture of a secure run holds no plaintext marker; a plain run does).
. "$(dirname "$0")/lib.sh"
D=$TMP
K="$ZPS_BIN/zps-keygen"
mkdir -p "$D/allow"
$K "$D/server" >/dev/null && $K "$D/w1" >/dev/null && $K "$D/w2" >/dev/null || fail "zps-keygen failed"
[ "$(stat -c %a "$D/w1.key")" = 600 ] || fail "secret key file is not mode 0600"
cp "$D/w1.pub" "$D/allow/worker-0.pub"   # worker-<R>.pub: speaks as worker R only
SEC="--curve-secret $D/server.key --allow-dir $D/allow"
start_servers 1 --table-dim 4 --optimizer sgd --lr 1 $SEC
grep -q "CURVE on: 1 client keys allowed" "$TMP/server.0.log" || fail "server did not turn CURVE on"
port=${SERVERS##*:}

TCPDUMP=$(command -v tcpdump || echo /usr/sbin/tcpdump)
capture() { # capture FILE PORT: start tcpdump on lo for PORT, set CAP_PID
    "$TCPDUMP" -i lo --immediate-mode -U -Z root -w "$1" "tcp port $2" >/dev/null 2>"$1.err" &
    CAP_PID=$!
    PIDS="$PIDS $CAP_PID"
    t=0   # capturing once tcpdump says it listens, however long that takes
    until grep -q "listening on" "$1.err" 2>/dev/null; do
        t=$((t + 1)); [ $t -gt 600 ] && fail "tcpdump did not start: $(cat "$1.err")"
        sleep 0.1
    done
}
# stop_capture FILE: stops tcpdump once FILE holds at least one packet
stop_capture() {
    t=0
    while [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -le 24 ] && [ $t -lt 100 ]; do sleep 0.1; t=$((t + 1)); done
    kill -INT "$CAP_PID"; wait "$CAP_PID" 2>/dev/null
}
can_capture=1
[ "$(id -u)" = 0 ] && [ -x "$TCPDUMP" ] || can_capture=0

[ $can_capture = 1 ] && capture "$D/secure.pcap" "$port"
"$ZPS_BIN/it_kv" marker --servers "$SERVERS" --curve-secret "$D/w1.key" \
    --server-public "$D/server.pub" || fail "the allowed client could not push and pull"
echo "ok: an allowed client pushes and pulls"
if "$ZPS_BIN/it_kv" marker --servers "$SERVERS" --curve-secret "$D/w2.key" \
    --server-public "$D/server.pub" >"$D/w2.out" 2>&1; then
    fail "a client whose key is not allowed got in"
fi
grep -q "refused a connection from 127.0.0.1" "$TMP/server.0.log" || fail "the refusal was not logged"
if "$ZPS_BIN/it_kv" marker --servers "$SERVERS" >"$D/plain.out" 2>&1; then
    fail "a client without CURVE got in"
fi
echo "ok: a client with an unknown key, and one without CURVE, cannot pull a weight"
[ $(grep -c "refused a connection from" "$TMP/server.0.log") -eq 1 ] || fail "a refused peer was logged more than once"
# a worker trains over CURVE
"$ZPS_BIN/zps-datagen" ctr --rows 5000 --test-rows 500 --features 1000 --seed 61 --out "$D/c" >/dev/null 2>&1
kill $SERVER_PIDS; wait $SERVER_PIDS 2>/dev/null
start_servers 1 --model lr $SEC
"$ZPS_BIN/zps-worker" --servers "$SERVERS" --model lr --train "$D/c.train" --no-cache \
    --curve-secret "$D/w1.key" --server-public "$D/server.pub" >"$D/w.log" 2>&1 || fail "a CURVE worker failed: $(tail -3 "$D/w.log")"
echo "ok: a worker trains over CURVE"
# the launcher's --secure: keys made for the job, used by every process, removed afterwards
"$(pwd)/scripts/zps-launch" --bin "$ZPS_BIN" --secure --servers 2 --workers 2 --log-dir "$D/sec" -- \
    --model lr --train "$D/c.train" --no-cache >"$D/sec.out" 2>&1 || fail "--secure job failed: $(tail -5 "$D/sec.out")"
grep -q "CURVE on: 3 client keys allowed" "$D/sec/server.0.log" || fail "--secure did not turn CURVE on (worker-0, worker-1, admin)"
keydir=$(sed -n 's/.*CURVE keys made for this job in \([^ ]*\) .*/\1/p' "$D/sec.out")
[ -n "$keydir" ] && [ ! -e "$keydir" ] || fail "--secure left its keys behind ($keydir)"
echo "ok: zps-launch --secure runs the job over CURVE and removes its keys"
kill $SERVER_PIDS; wait $SERVER_PIDS 2>/dev/null

if [ $can_capture = 1 ]; then
    stop_capture "$D/secure.pcap"
    start_servers 1 --table-dim 4 --optimizer sgd --lr 1
    pport=${SERVERS##*:}
    capture "$D/plain.pcap" "$pport"
    "$ZPS_BIN/it_kv" marker --servers "$SERVERS" >/dev/null || fail "plain marker push failed"
    t=0   # the marker went out in the clear: wait until the capture holds it
    while ! grep -a -q ZPSMARKER "$D/plain.pcap" && [ $t -lt 100 ]; do sleep 0.1; t=$((t + 1)); done
    stop_capture "$D/plain.pcap"
    plain=$(grep -a -c ZPSMARKER "$D/plain.pcap")
    secure=$(grep -a -c ZPSMARKER "$D/secure.pcap")
    echo "capture: plaintext run shows the marker in $plain packet(s), CURVE run in $secure"
    [ "$plain" -gt 0 ] || fail "the capture did not work (no marker in the plaintext run)"
    [ "$secure" -eq 0 ] || fail "the marker is visible in the CURVE run"
else
    echo "SKIP part: packet capture needs root and tcpdump"
fi
echo "it_security: ok"
