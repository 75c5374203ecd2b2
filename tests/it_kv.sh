#!/bin/sh
# 3 servers, 4 concurrent client processes pushing and pulling; afterwards
# every weight must equal the independently computed sum of all pushes.
. "$(dirname "$0")/lib.sh"

start_servers 3 --table-dim 1 --optimizer sgd --lr 0.5
echo "servers: $SERVERS"

ROUNDS=12 KEYS=60000 SEED=4242
cpids=""
for c in 0 1 2 3; do
    "$ZPS_BIN/it_kv" push --servers "$SERVERS" --client $c --rounds $ROUNDS --keys $KEYS \
        --seed $SEED >"$TMP/client.$c.log" 2>&1 &
    cpids="$cpids $!"
done
for p in $cpids; do
    wait "$p" || fail "a client process failed"
done
cat "$TMP"/client.*.log

"$ZPS_BIN/it_kv" verify --servers "$SERVERS" --clients 4 --rounds $ROUNDS --keys $KEYS \
    --seed $SEED --lr 0.5 || fail "weights differ from the sum of all pushes"

# malformed and wrong-version messages get error replies; the server goes on
"$ZPS_BIN/it_kv" errors --servers "${SERVERS%%,*}" || fail "bad messages not answered correctly"
"$ZPS_BIN/it_kv" verify --servers "$SERVERS" --clients 4 --rounds $ROUNDS --keys $KEYS \
    --seed $SEED --lr 0.5 >/dev/null || fail "server state changed after bad messages"

# servers listed in the wrong order: a clear error naming the address
s0=${SERVERS%%,*}; rest=${SERVERS#*,}; s1=${rest%%,*}; s2=${rest#*,}
if "$ZPS_BIN/it_kv" verify --servers "$s1,$s0,$s2" --keys 10 >"$TMP/order.out" 2>&1; then
    fail "wrong server order was accepted"
fi
grep -q "listed as server" "$TMP/order.out" || fail "no clear message for wrong order: $(cat "$TMP/order.out")"

# a server that is not there: a timeout naming the address, not a hang
if "$ZPS_BIN/it_kv" verify --servers tcp://127.0.0.1:1 --keys 10 >"$TMP/dead.out" 2>&1; then
    fail "a dead server was accepted"
fi
grep -q "tcp://127.0.0.1:1" "$TMP/dead.out" || fail "dead-server message does not name the address"

grep -q "hello from" "$TMP/server.0.log" || fail "server did not log the client hello"

# SIGTERM: clean exit 0
for p in $SERVER_PIDS; do kill -TERM "$p"; done
for p in $SERVER_PIDS; do
    wait_exit "$p" 10 || fail "server $p did not exit 0 on SIGTERM"
done
grep -q "signal received" "$TMP/server.0.log" || fail "no shutdown line in the log"

# --threads 3: requests of 50,000 keys (4 blocks of 16,384) are split over
# three threads; with 3 clients in flight every sum is still exact
SRV_TAG=thr. start_servers 1 --table-dim 1 --optimizer sgd --lr 0.5 --threads 3
grep -q "split over 3 threads" "$TMP/thr.server.0.log" || fail "no threads line in the log"
KEYS=600000 ROUNDS=3
cpids=""
for c in 0 1 2; do
    "$ZPS_BIN/it_kv" push --servers "$SERVERS" --client $c --rounds $ROUNDS --keys $KEYS \
        --seed $SEED >"$TMP/thr.client.$c.log" 2>&1 &
    cpids="$cpids $!"
done
for p in $cpids; do
    wait "$p" || fail "a client process failed (--threads 3): $(cat "$TMP"/thr.client.*.log)"
done
"$ZPS_BIN/it_kv" verify --servers "$SERVERS" --clients 3 --rounds $ROUNDS --keys $KEYS \
    --seed $SEED --lr 0.5 || fail "--threads 3: weights differ from the sum of all pushes"
# the pushes and the pulls (about 50,000 keys each) were split; verify's own
# pulls may be too, so at least 72
line=$("$ZPS_BIN/zps-ctl" --servers "$SERVERS" stats | head -1)
split=$(echo "$line" | tr ' ' '\n' | sed -n 's/^split_requests=//p')
[ -n "$split" ] && [ "$split" -ge 72 ] || fail "--threads 3: 72 split requests expected: $line"
echo "--threads 3: $split requests split over threads, every sum exact"
for p in $SERVER_PIDS; do kill -TERM "$p"; done
for p in $SERVER_PIDS; do
    wait_exit "$p" 10 || fail "server $p (--threads 3) did not exit 0 on SIGTERM"
done
echo "it_kv: ok"
