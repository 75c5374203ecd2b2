#!/bin/sh
# zps-ctl, the operator's client: push (each line once, also through a
# proxy that duplicates messages), pull (order and duplicates kept), dump
# (every key, exact values), stats, health (names a server that does not
# answer), shutdown (refused without the admin token, done with it), and
# strict input checking (bad lines: file:line and nothing pushed; base-10
# numbers only).
. "$(dirname "$0")/lib.sh"
D=$TMP
CTL="$ZPS_BIN/zps-ctl"

"$CTL" --help | grep -q "usage: zps-ctl" || fail "--help"
"$CTL" --version | grep -q "zps-ctl" || fail "--version"

# ---- two servers, dim 1, sgd lr 1: a weight is minus the sum of its gradients -------------
start_servers 2 --table-dim 1 --optimizer sgd --lr 1
C="$CTL --servers $SERVERS"

# 400 lines of 1..8 random keys (some repeated within a line) with small integer values
awk 'BEGIN { srand(11); for (l = 0; l < 400; l++) { n = 1 + int(rand() * 8); s = "";
      for (i = 0; i < n; i++) { k = int(rand() * 300); if (rand() < 0.3) k = k * 1000003 + 17;
        s = s (i ? " " : "") k ":" (int(rand() * 17) - 8) }
      print s; if (l % 50 == 7) print "# a comment"; if (l % 70 == 3) print "" } }' >"$D/push.txt"
# expected: per key, minus the sum of its values; and the line/key counts zps-ctl reports
awk '!/^#/ && NF { lines++; delete seen; for (i = 1; i <= NF; i++) { split($i, kv, ":");
      sum[kv[1]] -= kv[2]; if (!(kv[1] in seen)) { seen[kv[1]] = 1; keys++ } } }
     END { for (k in sum) print k, sum[k] + 0 > "'"$D"'/expect.unsorted";
           print "pushed " lines " lines, " keys " keys" }' "$D/push.txt" >"$D/expect.msg"
sort -n -k1,1 "$D/expect.unsorted" >"$D/expect.txt"

$C push --file "$D/push.txt" --window 16 >"$D/push.out" 2>"$D/push.err" || fail "push failed: $(cat "$D/push.err")"
[ "$(cat "$D/push.out")" = "$(cat "$D/expect.msg")" ] ||
    fail "push said '$(cat "$D/push.out")', expected '$(cat "$D/expect.msg")'"
$C dump --out "$D/dump.txt" 2>/dev/null || fail "dump failed"
cmp -s "$D/dump.txt" "$D/expect.txt" || { diff "$D/dump.txt" "$D/expect.txt" | head; fail "dump differs from the sums of the pushed lines"; }
echo "ok: push of $(wc -l <"$D/expect.txt") keys in 400 lines; dump equals the sums exactly"
# dump to stdout is the same text
$C dump 2>/dev/null | cmp -s - "$D/expect.txt" || fail "dump to stdout differs from dump --out"

# pull: the order given, duplicates kept, a key never pushed is its initial value 0
k1=$(sed -n 5p "$D/expect.txt" | cut -d' ' -f1); k2=$(sed -n 2p "$D/expect.txt" | cut -d' ' -f1)
$C pull "$k1,$k2,$k1,99999999" >"$D/pull.txt" || fail "pull failed"
{ grep "^$k1 " "$D/expect.txt"; grep "^$k2 " "$D/expect.txt"; grep "^$k1 " "$D/expect.txt"; echo "99999999 0"; } >"$D/pull.want"
cmp -s "$D/pull.txt" "$D/pull.want" || { cat "$D/pull.txt"; fail "pull answered the wrong rows or order"; }
echo "ok: pull keeps the order and duplicates of the keys given"

# stats: every stored key counted; text and json agree
$C stats >"$D/stats.txt" || fail "stats failed"
stored=$(sed -n 's/^total keys_stored=\([0-9]*\).*/\1/p' "$D/stats.txt")
[ "$stored" = "$(wc -l <"$D/expect.txt")" ] || fail "stats counts $stored keys, dump has $(wc -l <"$D/expect.txt")"
[ "$(grep -c '^server=' "$D/stats.txt")" = 2 ] || fail "stats did not list both servers"
applied0=$(sed -n 's/^total .*applied_pushes=\([0-9]*\).*/\1/p' "$D/stats.txt")
if command -v python3 >/dev/null; then
    $C stats --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(s["keys_stored"] for s in d["servers"]))' >"$D/js" ||
        fail "stats --json is not valid JSON"
    [ "$(cat "$D/js")" = "$stored" ] || fail "stats --json disagrees with stats"
fi
echo "ok: stats counts $stored keys, $applied0 pushes applied"

# bad input: file:line named, nothing pushed
printf '1:1 2:2\n3:4\n5:x\n6:1\n' >"$D/bad1.txt"
printf '1:1\n\n7:1,2\n' >"$D/bad2.txt"
printf '0x10:1\n' >"$D/bad3.txt"
printf '1:inf\n' >"$D/bad4.txt"
printf '1:3e38 1:3e38\n' >"$D/bad5.txt"
for f in bad1:3 bad2:3 bad3:1 bad4:1 bad5:1; do
    name=${f%%:*}; line=${f#*:}
    if $C push --file "$D/$name.txt" >"$D/$name.out" 2>&1; then fail "$name.txt was accepted"; fi
    grep -q "$D/$name.txt:$line:" "$D/$name.out" || fail "$name.txt: the error does not name line $line: $(cat "$D/$name.out")"
    grep -q "nothing pushed" "$D/$name.out" || fail "$name.txt: no 'nothing pushed'"
done
$C dump 2>/dev/null | cmp -s - "$D/expect.txt" || fail "a rejected file changed the weights"
echo "ok: bad lines are named (file:line) and nothing of the file is pushed"

# base-10 only, and usage errors exit 2
$C --rank 010 pull 1 >/dev/null || fail "--rank 010 (ten) was refused"
for bad in "--rank 0x10 pull 1" "--window 0 push --file $D/push.txt" "pull 1,abc" "pull 0x1" "frob" "pull"; do
    # shellcheck disable=SC2086
    $C $bad >/dev/null 2>&1; rc=$?
    [ $rc = 2 ] || fail "'zps-ctl $bad' exited $rc, not 2"
done
echo "ok: usage errors exit 2; numbers are base 10"

# push through a proxy that duplicates a third of the messages both ways: still once each
"$ZPS_BIN/zps-proxy" --listen tcp://127.0.0.1:0 --upstream "${SERVERS%%,*}" --ready-file "$D/px0" \
    --dup 0.33 --seed 3 >"$D/px0.out" 2>"$D/px0.log" &
px0=$!; PIDS="$PIDS $px0"
"$ZPS_BIN/zps-proxy" --listen tcp://127.0.0.1:0 --upstream "${SERVERS#*,}" --ready-file "$D/px1" \
    --dup 0.33 --seed 4 >"$D/px1.out" 2>"$D/px1.log" &
px1=$!; PIDS="$PIDS $px1"
t=0; while [ ! -s "$D/px0" ] || [ ! -s "$D/px1" ]; do t=$((t + 1)); [ $t -gt 100 ] && fail "proxies not ready"; sleep 0.1; done
"$CTL" --servers "$(cat "$D/px0"),$(cat "$D/px1")" --rank 1 push --file "$D/push.txt" >/dev/null ||
    fail "push through the duplicating proxies failed"
kill -TERM $px0 $px1; wait $px0 $px1
dups=$(cat "$D/px0.out" "$D/px1.out" | sed -n 's/.*c2s_duplicated=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
[ "$dups" -gt 0 ] || fail "the proxies duplicated nothing"
awk '{ print $1, 2 * $2 }' "$D/expect.txt" >"$D/expect2.txt"
$C dump 2>/dev/null | cmp -s - "$D/expect2.txt" || fail "a duplicated push was applied twice (or one was lost)"
echo "ok: the file pushed again through proxies that duplicated $dups requests: every weight exactly doubled"

# health: a stopped server is named, exit 1; all up: exit 0
$C health >"$D/h.out" || fail "health failed with every server up: $(cat "$D/h.out")"
p1=${SERVER_PIDS##* }
kill -STOP "$p1"
if $C --timeout 1 health >"$D/h2.out"; then kill -CONT "$p1"; fail "health passed with server 1 stopped"; fi
kill -CONT "$p1"
grep -q "server 1 at ${SERVERS#*,}: NOT ANSWERING" "$D/h2.out" || fail "health did not name server 1: $(cat "$D/h2.out")"
grep -q "server 0 at ${SERVERS%%,*}: ok" "$D/h2.out" || fail "health did not report server 0 as ok"
echo "ok: health names the server that does not answer"
kill $SERVER_PIDS; wait $SERVER_PIDS 2>/dev/null

# ---- wide rows: dim 3 -------------------------------------------------------------------------
start_servers 1 --table-dim 3 --optimizer sgd --lr 1
printf '5:1,2,3 7:0.5,0,-1\n5:1,1,1\n' >"$D/wide.txt"
"$CTL" --servers "$SERVERS" push --file "$D/wide.txt" >/dev/null || fail "wide push failed"
"$CTL" --servers "$SERVERS" pull 7,5 >"$D/wide.out" || fail "wide pull failed"
printf '7 -0.5 0 1\n5 -2 -3 -4\n' | cmp -s - "$D/wide.out" || fail "wide rows wrong: $(cat "$D/wide.out")"
printf '5:1,2\n' >"$D/wide-bad.txt"
"$CTL" --servers "$SERVERS" push --file "$D/wide-bad.txt" 2>&1 | grep -q "wide-bad.txt:1: key 5: 3 values needed" ||
    fail "a short row was not reported"
echo "ok: rows of dim 3"
kill $SERVER_PIDS; wait $SERVER_PIDS 2>/dev/null

# ---- shutdown: the admin token ---------------------------------------------------------------
umask 077
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$D/token"; echo >>"$D/token"
printf 'wrong%s\n' "$(cat "$D/token")" >"$D/wrong"
cp "$D/token" "$D/open"; chmod 644 "$D/open"
"$CTL" --servers tcp://127.0.0.1:1 --admin-token-file "$D/open" shutdown >"$D/open.out" 2>&1 &&
    fail "a token file readable by others was used"
grep -q "readable by others" "$D/open.out" || fail "no reason given for refusing an open token file"
"$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 --table-dim 1 --admin-token-file "$D/token" \
    --ready-file "$D/ready.adm" >/dev/null 2>"$D/server.adm.log" &
sp=$!; PIDS="$PIDS $sp"
t=0; while [ ! -s "$D/ready.adm" ]; do
    kill -0 $sp 2>/dev/null || fail "the server does not start with --admin-token-file: $(cat "$D/server.adm.log")"
    t=$((t + 1)); [ $t -gt 300 ] && fail "server not ready"; sleep 0.1
done
C="$CTL --servers $(cat "$D/ready.adm")"
if $C shutdown >"$D/sd0.out" 2>&1; then fail "SHUTDOWN without a token was obeyed (defended: refused)"; fi
if $C --admin-token-file "$D/wrong" shutdown >"$D/sd1.out" 2>&1; then fail "SHUTDOWN with a wrong token was obeyed"; fi
$C health >/dev/null || fail "the server stopped serving after refused shutdowns"
grep -q "refused" "$D/sd1.out" || fail "zps-ctl did not report the refusal"
$C --admin-token-file "$D/token" shutdown >"$D/sd2.out" || fail "SHUTDOWN with the right token failed: $(cat "$D/sd2.out")"
wait_exit $sp 10 || fail "the server did not exit 0 after SHUTDOWN"
echo "ok: shutdown refused without / with a wrong token, obeyed with the token"
echo "it_ctl: ok"
