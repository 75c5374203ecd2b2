#!/bin/sh
# What the server guards against, end to end (docs/security.md):
# the admin secret, fail-closed CURVE start-up, oversized messages, exact
# dedup, the connection binding of ranks, --max-keys, non-finite updates,
# bounded held pulls and send queues, maintenance under a flood, the
# connection limit, identities under CURVE, escaped wire strings in logs.
. "$(dirname "$0")/lib.sh"
D=$TMP
G="$ZPS_BIN/it_kv guard"
stat1() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }

# ---- fail-closed start-up: each partial CURVE or admin configuration is refused -----------
"$ZPS_BIN/zps-keygen" "$D/srv" >/dev/null && "$ZPS_BIN/zps-keygen" "$D/w0" >/dev/null || fail "keygen"
mkdir -p "$D/allow" "$D/empty"
cp "$D/w0.pub" "$D/allow/worker-0.pub"
refuse() { # refuse "expected message" server options...
    want=$1; shift
    if "$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 --table-dim 1 "$@" >"$D/r.out" 2>&1; then
        fail "server started with $*"
    fi
    grep -q -- "$want" "$D/r.out" || fail "no clear message for $*: $(cat "$D/r.out")"
    echo "ok: refused to start ($*): $(grep -o -- "$want" "$D/r.out" | head -n 1)"
}
refuse "allow-dir needs --curve-secret" --allow-dir "$D/allow"
refuse "curve-secret needs --allow-dir" --curve-secret "$D/srv.key"
refuse "server-public is a client option" --curve-secret "$D/srv.key" --allow-dir "$D/allow" \
    --server-public "$D/srv.pub"
refuse "needs a .key file" --curve-secret "$D/srv.pub" --allow-dir "$D/allow"
refuse "no \*.pub key" --curve-secret "$D/srv.key" --allow-dir "$D/empty"
refuse "cannot read --allow-dir" --curve-secret "$D/srv.key" --allow-dir "$D/no-such-dir"
refuse "srv-missing.key" --curve-secret "$D/srv-missing.key" --allow-dir "$D/allow"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$D/token"; echo >>"$D/token"
chmod 644 "$D/token"
refuse "accessible to group or others" --admin-token-file "$D/token"
chmod 600 "$D/token"
echo "short" >"$D/badtoken"; chmod 600 "$D/badtoken"
refuse "32 to 256 hex characters" --admin-token-file "$D/badtoken"
refuse "cannot open" --admin-token-file "$D/no-such-token"

# ---- the admin secret ------------------------------------------------------------------
start_servers 1 --table-dim 1 --optimizer sgd --lr 1 --admin-token-file "$D/token" --max-msg-mb 2
s0=$SERVERS; pid=${SERVER_PIDS# }
$G shutdown --servers "$s0"; rc=$?
[ $rc -eq 3 ] || fail "SHUTDOWN without the token: exit $rc, expected a ZPS_EPERM refusal"
head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$D/wrong"
$G shutdown --servers "$s0" --token-file "$D/wrong"; rc=$?
[ $rc -eq 3 ] || fail "SHUTDOWN with a wrong token: exit $rc"
kill -0 "$pid" || fail "the server stopped on a refused SHUTDOWN"
grep -q "refused a SHUTDOWN from 127.0.0.1" "$TMP/server.0.log" || fail "the refusal was not logged"
echo "ok: SHUTDOWN without or with a wrong token is refused (ZPS_EPERM, logged)"

# ---- oversized message: an ERROR reply, not silence --------------------------------------
$G oversized --servers "$s0" --count 3 || fail "oversized message not answered with ZPS_ETOOBIG"
echo "ok: a 3 MiB push to a --max-msg-mb 2 server gets ERROR ZPS_ETOOBIG, serving goes on"

# ---- exact dedup: scrambled order, duplicates, seq 0, beyond the window -------------------
$G dedup --servers "$s0" --count 600 >"$D/dedup.out" || { cat "$D/dedup.out"; fail "dedup"; }
grep "^dedup:" "$D/dedup.out"
grep -q "client rank=3 .* received=1[0-9]* applied=601 duplicates=[0-9]* rejected=1 applied_seq=600" "$D/dedup.out" ||
    fail "per-client stats do not add up: $(grep '^client' "$D/dedup.out")"
echo "ok: per-client counters: $(grep '^client rank=3' "$D/dedup.out")"

# ---- binding of a rank to its connection (plaintext) --------------------------------------
$G forge --servers "$s0" >"$D/forge.out" || { cat "$D/forge.out"; fail "forged pushes/clocks"; }
echo "ok: another connection cannot push, clock or take over a bound rank while its connection lives; after it closes, a new HELLO takes it"

# ---- log lines: wire strings escaped, hellos rate-limited --------------------------------
grep -q 'version it_kv\\n2026-01-01 forged line' "$TMP/server.0.log" || fail "client version not escaped"
if grep -q '^2026-01-01 forged line' "$TMP/server.0.log"; then fail "a forged log line got through"; fi
echo "ok: a client version with a newline is logged escaped on one line"

# ---- the admin token is accepted ---------------------------------------------------------
$G shutdown --servers "$s0" --token-file "$D/token" || fail "SHUTDOWN with the token refused"
wait_exit "$pid" 10 || fail "server did not exit 0 after an authorised SHUTDOWN"
grep -q "stopping: .* pushes received: .* applied, .* duplicates, .* rejected" "$TMP/server.0.log" ||
    fail "no counters in the exit line"
grep -q "client rank 3 (nonce fingerprint [0-9a-f]*): .* applied" "$TMP/server.0.log" || fail "no per-client exit line"
echo "ok: SHUTDOWN with the token stops the server; exit line with the counters"

# ---- server without a token file refuses every SHUTDOWN ------------------------------------
start_servers 1 --table-dim 1 --optimizer sgd --lr 1 --max-keys 100
s0=$SERVERS; pid=${SERVER_PIDS# }
$G shutdown --servers "$s0" --token-file "$D/token"; rc=$?
[ $rc -eq 3 ] || fail "a server without --admin-token-file accepted SHUTDOWN"
echo "ok: without --admin-token-file every SHUTDOWN is refused"

# ---- --max-keys: a push over the limit is refused whole -----------------------------------
$G limit --servers "$s0" --count 100 || fail "--max-keys"
echo "ok: a push over --max-keys is refused whole (ZPS_ELIMIT), its seq can be retried"

# ---- a flood: every reply delivered or counted as dropped; maintenance keeps running --------
$G flood --servers "$s0" --count 30000 --keys 256 >"$D/flood.out" || { cat "$D/flood.out"; fail "flood"; }
grep "^flood:" "$D/flood.out"
echo "ok: maintenance passes >= messages / 256 under the flood ($(stat1 maintenance_passes "$(grep ^keys_stored "$D/flood.out")") passes)"
kill "$pid"; wait "$pid"

# ---- non-finite updates are refused whole ---------------------------------------------------
start_servers 1 --table-dim 1 --optimizer ftrl --lr 0.1
$G nonfinite --servers "$SERVERS" --value 1e20 || fail "1e20 under FTRL"
kill $SERVER_PIDS; wait $SERVER_PIDS
start_servers 1 --table-dim 1 --optimizer sgd --lr 2
$G nonfinite --servers "$SERVERS" --value 3e38 || fail "3e38 under SGD"
kill $SERVER_PIDS; wait $SERVER_PIDS
echo "ok: gradients that would overflow a weight or state are refused (ZPS_ENONFINITE, key named)"

# ---- Push.lr_scale: applied exactly, refused out of range ----------------------------------
start_servers 1 --table-dim 1 --optimizer sgd --lr 0.5
$G lrscale --servers "$SERVERS" || fail "lr_scale under sgd"
kill $SERVER_PIDS; wait $SERVER_PIDS
echo "ok: a push's step multiplier is applied exactly; out-of-range ones are refused whole"

# ---- held pulls: bounded per connection, dropped when the peer leaves -----------------------
start_servers 1 --table-dim 1 --optimizer sgd --consistency ssp:0 --num-workers 2
$G held --servers "$SERVERS" --count 300 || fail "held pulls"
kill $SERVER_PIDS; wait $SERVER_PIDS

# ---- the connection limit -------------------------------------------------------------------
start_servers 1 --table-dim 1 --max-connections 3
$G conns --servers "$SERVERS" --count 3 || fail "--max-connections"
grep -q "connections is the limit (--max-connections)" "$TMP/server.0.log" || fail "refusal not logged"
echo "ok: a 4th connection is refused (ZPS_ELIMIT) under --max-connections 3, the others are served"
kill $SERVER_PIDS; wait $SERVER_PIDS

# ---- identities under CURVE -------------------------------------------------------------------
"$ZPS_BIN/zps-keygen" "$D/tool" >/dev/null && cp "$D/tool.pub" "$D/allow/dashboard.pub"
start_servers 1 --table-dim 4 --optimizer sgd --lr 1 --curve-secret "$D/srv.key" --allow-dir "$D/allow"
grep -q "CURVE on: 2 client keys allowed .*1 worker, 1 read-only" "$TMP/server.0.log" || fail "identities not read"
CK="--server-public $D/srv.pub"
"$ZPS_BIN/it_kv" marker --servers "$SERVERS" --curve-secret "$D/w0.key" $CK >/dev/null ||
    fail "worker-0's key cannot push as worker 0"
if "$ZPS_BIN/it_kv" marker --servers "$SERVERS" --client 1 --curve-secret "$D/w0.key" $CK >"$D/c1.out" 2>&1; then
    fail "worker-0's key pushed as worker 1"
fi
grep -q "speaks only as worker 0" "$D/c1.out" || fail "no clear refusal: $(cat "$D/c1.out")"
if "$ZPS_BIN/it_kv" marker --servers "$SERVERS" --curve-secret "$D/tool.key" $CK >"$D/ro.out" 2>&1; then
    fail "a read-only key pushed"
fi
grep -q "is read-only" "$D/ro.out" || fail "no clear read-only refusal: $(cat "$D/ro.out")"
"$ZPS_BIN/it_kv" stats --servers "$SERVERS" --curve-secret "$D/tool.key" $CK >/dev/null ||
    fail "a read-only key cannot read STATS"
echo "ok: under CURVE worker-0.pub speaks only as worker 0, other keys are read-only"
kill $SERVER_PIDS; wait $SERVER_PIDS
echo "it_server_guard: ok"
