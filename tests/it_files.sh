#!/bin/sh
# File safety with the real binaries:
# - zps-keygen: a fresh pair is 0600/0644; an existing NAME.key of another
#   user (0666) or a NAME.key symlink is refused and left as it was, and
#   "mode 0600" is not printed;
# - checkpoints belong to a job: a server started without --restore in a
#   directory holding checkpoints of its rank refuses to start, naming the
#   directory, the other job's id and the choices; --restore adopts the job
#   (same id in the log) and restores the exact weights (saved model of the
#   restored server == saved model of the original); a newest checkpoint of
#   format version 1 or with a bad checksum is reported and the previous one
#   restored, again exactly; another rank may start new in the same
#   directory; pruning keeps --checkpoint-keep of the job;
# - a planted shard-R-of-S.sum symlink in the --save-model directory is
#   refused (named in the log), its target untouched.
. "$(dirname "$0")/lib.sh"
D=$TMP
K="$ZPS_BIN/zps-keygen"

# ---- zps-keygen ------------------------------------------------------------------------
$K "$D/a" >"$D/kg.out" 2>&1 || fail "zps-keygen failed: $(cat "$D/kg.out")"
grep -q "wrote $D/a.key (secret, mode 0600)" "$D/kg.out" || fail "zps-keygen: $(cat "$D/kg.out")"
[ "$(stat -c %a "$D/a.key")" = 600 ] || fail "a.key is mode $(stat -c %a "$D/a.key")"
[ "$(stat -c %a "$D/a.pub")" = 644 ] || fail "a.pub is mode $(stat -c %a "$D/a.pub")"
echo "ok: zps-keygen writes NAME.key 0600 and NAME.pub 0644"
if [ "$(id -u)" = 0 ]; then
    echo planted >"$D/b.key"; chmod 0666 "$D/b.key"; chown 65534:65534 "$D/b.key"
    if $K "$D/b" >"$D/kg2.out" 2>"$D/kg2.err"; then fail "zps-keygen wrote over another user's file"; fi
    grep -q "$D/b.key is owned by uid 65534" "$D/kg2.err" || fail "no clear refusal: $(cat "$D/kg2.err")"
    ! grep -q "mode 0600" "$D/kg2.out" || fail "zps-keygen claimed mode 0600 after refusing"
    [ "$(cat "$D/b.key")" = planted ] && [ "$(stat -c %a:%u "$D/b.key")" = 666:65534 ] ||
        fail "the other user's file was changed"
    [ ! -e "$D/b.pub" ] || fail "b.pub written although b.key was refused"
    echo "ok: zps-keygen refuses an existing 0666 NAME.key of another user and leaves it"
else
    echo "note: not root, the other-user keygen case is skipped"
fi
echo precious >"$D/victim"
ln -s "$D/victim" "$D/c.key"
if $K "$D/c" >"$D/kg3.out" 2>"$D/kg3.err"; then fail "zps-keygen wrote through a symlink"; fi
grep -q "$D/c.key is a symbolic link" "$D/kg3.err" || fail "no clear refusal: $(cat "$D/kg3.err")"
[ "$(cat "$D/victim")" = precious ] || fail "the symlink's target was changed"
echo "ok: zps-keygen refuses a NAME.key symlink"

# ---- checkpoints belong to a job ----------------------------------------------------
JOB="--table-dim 1 --optimizer sgd --lr 0.5"
CK="--checkpoint-dir $D/ck --checkpoint-every 0.2 --checkpoint-keep 2"
ROUNDS=4 KEYS=3000 SEED=77
start_servers 1 $JOB $CK --save-model "$D/m1"
id=$(sed -n 's/.*checkpoints of shard 0 go to .* as job \([0-9a-f]\{16\}\).*/\1/p' "$D/server.0.log")
[ -n "$id" ] || fail "the server did not log its job id"
"$ZPS_BIN/it_kv" push --servers "$SERVERS" --client 0 --rounds $ROUNDS --keys $KEYS --seed $SEED \
    >"$D/push.log" 2>&1 || fail "push failed: $(cat "$D/push.log")"
kill -TERM $SERVER_PIDS; wait $SERVER_PIDS
grep -q "final checkpoint [0-9]* written" "$D/server.0.log" || fail "no final checkpoint"
n=$(ls "$D/ck" | grep -c '^ckpt-0-of-1-.*\.zck$')
[ "$n" -ge 1 ] && [ "$n" -le 2 ] || fail "$n checkpoints kept, --checkpoint-keep 2: $(ls "$D/ck")"
[ "$(ls -a "$D/ck" | grep -c '\.tmp$')" = 0 ] || fail "temporary files left: $(ls -a "$D/ck")"
echo "ok: job $id wrote checkpoints, $n kept (keep 2), no temporary files"

# a new job in the same directory: refused
"$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 $JOB $CK --ready-file "$D/r2" >/dev/null 2>"$D/new.log" &
p=$!
PIDS="$PIDS $p"
wait_exit $p 30; st=$?
[ "$st" != 0 ] || fail "a new job started in a directory holding another job's checkpoints"
[ ! -s "$D/r2" ] || fail "the refused server became ready"
for w in "checkpoint directory $D/ck already holds" "job $id" "--restore to continue that job" \
    "another --checkpoint-dir"; do
    grep -q -e "$w" "$D/new.log" || fail "refusal does not say '$w': $(cat "$D/new.log")"
done
echo "ok: a server without --restore refuses $D/ck (job $id): $(sed -n 's/.*cannot start: //p' "$D/new.log" | cut -c1-90)..."

# another rank may start a new job in the same directory (rank 0 of any server count may not)
rm -f "$D/r1"
"$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 --rank 1 --num-servers 2 $JOB \
    --checkpoint-dir "$D/ck" --ready-file "$D/r1" >/dev/null 2>"$D/rank1.log" &
p=$!
PIDS="$PIDS $p"
t=0; while [ ! -s "$D/r1" ] && [ $t -lt 300 ]; do sleep 0.1; t=$((t + 1)); done
kill -TERM $p; wait $p
grep -q "checkpoints of shard 1 go to" "$D/rank1.log" || fail "rank 1 did not start: $(cat "$D/rank1.log")"
rm -f "$D/ck"/ckpt-1-of-2-*.zck
"$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 --rank 0 --num-servers 2 $JOB \
    --checkpoint-dir "$D/ck" >/dev/null 2>"$D/rank0.log" &
p=$!
PIDS="$PIDS $p"
wait_exit $p 30; st=$?
[ "$st" != 0 ] && grep -q "already holds" "$D/rank0.log" || fail "rank 0 of 2 started beside rank 0 of 1's checkpoints"
echo "ok: rank 1 starts a new job in the same directory; rank 0 (of 2) is refused"

# restore: same job id, exact weights
restore_save() { # restore_save MODEL LOG: --restore, then exit at once saving MODEL
    rm -f "$D/rr"
    "$ZPS_BIN/zps-server" --bind tcp://127.0.0.1:0 $JOB $CK --restore --ready-file "$D/rr" \
        --save-model "$1" >/dev/null 2>"$2" &
    p=$!
    PIDS="$PIDS $p"
    t=0; while [ ! -s "$D/rr" ] && [ $t -lt 300 ]; do sleep 0.1; t=$((t + 1)); done
    [ -s "$D/rr" ] || fail "the restoring server did not start: $(cat "$2")"
    kill -TERM $p; wait $p
}
"$ZPS_BIN/it_kv" dump-model --model "$D/m1" >"$D/m1.raw" || fail "dump of m1 failed"
sort "$D/m1.raw" >"$D/m1.txt" # files list keys in table (hash) order, which differs between processes
[ "$(wc -l <"$D/m1.txt")" -gt 100 ] || fail "the original model is nearly empty"
restore_save "$D/m2" "$D/rs.log"
grep -q "restored checkpoint [0-9]*: .*(job $id)" "$D/rs.log" || fail "not restored as job $id: $(cat "$D/rs.log")"
"$ZPS_BIN/it_kv" dump-model --model "$D/m2" >"$D/m2.raw" || fail "dump of m2 failed"
sort "$D/m2.raw" >"$D/m2.txt" # files list keys in table (hash) order, which differs between processes
cmp -s "$D/m1.txt" "$D/m2.txt" || fail "restored weights differ from the original ($(wc -l <"$D/m1.txt") lines)"
echo "ok: --restore continues job $id with exactly the saved weights ($(wc -l <"$D/m1.txt") lines)"

# a damaged newest checkpoint (old format, bad checksum): reported, the previous one restored
for damage in v1 crc; do
    newest=$(ls "$D/ck"/ckpt-0-of-1-*.zck | sort | tail -n 1)
    c=$(basename "$newest" .zck); c=${c##*-}; c=$(echo "$c" | sed 's/^0*//')
    fake=$(printf '%s/ckpt-0-of-1-%08d.zck' "$D/ck" $((c + 1)))
    if [ $damage = v1 ]; then
        { printf 'ZPSCKPT1'; head -c 400 /dev/zero; } >"$fake"
        why="format version 1"
    else
        [ $((c + 1)) -lt 256 ] || fail "counter $c: the test sets one byte of it"
        cp "$newest" "$fake"
        # the header's counter (uint64 at offset 40) := c + 1, then one byte of a row flipped
        printf "\\$(printf %o $((c + 1)))" | dd of="$fake" bs=1 seek=40 conv=notrunc 2>/dev/null
        size=$(stat -c %s "$fake")
        printf '\377' | dd of="$fake" bs=1 seek=$((size - 20)) conv=notrunc 2>/dev/null
        why="checksum mismatch"
    fi
    restore_save "$D/m3" "$D/rs3.log"
    grep -q "$(basename "$fake") is unusable.*$why" "$D/rs3.log" || fail "$damage: not reported: $(cat "$D/rs3.log")"
    grep -q "restored checkpoint $c: .*(job $id)" "$D/rs3.log" || fail "$damage: checkpoint $c not restored: $(cat "$D/rs3.log")"
    "$ZPS_BIN/it_kv" dump-model --model "$D/m3" >"$D/m3.raw" || fail "dump of m3 failed"
    sort "$D/m3.raw" >"$D/m3.txt" # files list keys in table (hash) order, which differs between processes
    cmp -s "$D/m1.txt" "$D/m3.txt" || fail "$damage: weights after the fallback differ"
    rm -rf "$D/m3" "$fake"
    echo "ok: a newest checkpoint with $damage damage is reported; checkpoint $c restored exactly"
done
n=$(ls "$D/ck" | grep -c '^ckpt-0-of-1-.*\.zck$')
[ "$n" -ge 1 ] && [ "$n" -le 2 ] || fail "after the restarts $n checkpoints of job $id are kept, --checkpoint-keep 2: $(ls "$D/ck")"

# ---- a planted .sum symlink in the model directory -----------------------------------------
mkdir "$D/m4"
ln -s "$D/victim" "$D/m4/shard-0-of-1.sum"
start_servers 1 $JOB --save-model "$D/m4"
kill -TERM $SERVER_PIDS; wait $SERVER_PIDS
grep -q "$D/m4/shard-0-of-1.sum is a symbolic link" "$D/server.0.log" || fail "the .sum symlink was not refused: $(cat "$D/server.0.log")"
[ "$(cat "$D/victim")" = precious ] || fail "the .sum symlink's target was changed"
[ -L "$D/m4/shard-0-of-1.sum" ] || fail "the symlink was replaced"
echo "ok: a planted shard .sum symlink is refused, its target untouched"
echo "it_files: ok"
