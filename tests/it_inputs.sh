#!/bin/sh
# Input mistakes are caught before any training, with an error naming the
# path: empty training data (0-byte files up front; files without a single
# row at the first batch), a missing --train or --test, an unusable
# --cache-dir, --save-model / --test-predictions in a missing directory.
# Path mistakes exit 2 (like a bad option), data without rows exits 1; none
# of them trains (no "epoch" line).  The binary cache's location is printed
# once and the file is there.
. "$(dirname "$0")/lib.sh"
D=$TMP
W="$ZPS_BIN/zps-worker"
NOSRV="--servers tcp://127.0.0.1:9"   # never contacted: every check here comes first
"$ZPS_BIN/zps-datagen" ctr --rows 3000 --test-rows 500 --features 200 --nnz 10 --seed 7 \
    --out "$D/c" >/dev/null 2>&1 || fail "datagen failed"

# expect_fail RC "TEXT" ARGS...: the worker exits with RC, says TEXT, trains nothing
expect_fail() {
    want=$1 text=$2
    shift 2
    "$W" "$@" >"$D/out.log" 2>&1
    rc=$?
    [ "$rc" -eq "$want" ] || fail "exit $rc, not $want, for: $* ($(cat "$D/out.log"))"
    grep -qF -- "$text" "$D/out.log" || fail "no '$text' in the output of: $* ($(cat "$D/out.log"))"
    if grep -q "epoch 1/" "$D/out.log"; then fail "trained before finding the mistake: $*"; fi
    echo "ok: exit $want: $(grep -F -- "$text" "$D/out.log" | head -n 1 | sed 's/.*\(error\|zps-worker\): //')"
}

# ---- empty training data -------------------------------------------------------------------------
: >"$D/empty.train"
expect_fail 1 "no rows in the training data: $D/empty.train is empty" $NOSRV --train "$D/empty.train"
mkdir "$D/edir"; : >"$D/edir/a.txt"; : >"$D/edir/b.txt"
expect_fail 1 "no rows in the training data: $D/edir/a.txt, $D/edir/b.txt are empty" $NOSRV \
    --train "$D/edir"
# not empty but without a single row (blank lines): found at the first batch, before any push
printf '\n\n\n' >"$D/blank.train"
start_servers 1 --model lr
expect_fail 1 "no rows in the training data $D/blank.train" --servers "$SERVERS" --model lr \
    --train "$D/blank.train" --no-cache
line=$("$ZPS_BIN/it_kv" stats --servers "$SERVERS" | sed -n 1p)
echo "$line" | tr ' ' '\n' | grep -qx "pushes=0" || fail "the server got pushes: $line"
kill $SERVER_PIDS; wait $SERVER_PIDS 2>/dev/null

# ---- paths, before any connection or training -------------------------------------------------------
expect_fail 2 "--train $D/nope.train: No such file or directory" $NOSRV --train "$D/nope.train"
expect_fail 2 "--test $D/nope.test: No such file or directory" $NOSRV --train "$D/c.train" \
    --test "$D/nope.test"
: >"$D/empty.test"
expect_fail 1 "no rows in the test data: $D/empty.test is empty" $NOSRV --train "$D/c.train" \
    --test "$D/empty.test"
expect_fail 2 "--cache-dir: the directory of $D/no/such/cache, $D/no/such: No such file or directory" \
    $NOSRV --train "$D/c.train" --cache-dir "$D/no/such/cache"
expect_fail 2 "--cache-dir: cache directory $D/c.test is not a directory" $NOSRV \
    --train "$D/c.train" --cache-dir "$D/c.test"
expect_fail 2 "--save-model: the directory of $D/missing/model, $D/missing: No such file or directory" \
    $NOSRV --train "$D/c.train" --save-model "$D/missing/model"
expect_fail 2 "--test-predictions: the directory of $D/missing/p.txt, $D/missing: No such file" \
    $NOSRV --train "$D/c.train" --test "$D/c.test" --test-predictions "$D/missing/p.txt"
# only worker 0 reads --test: another worker does not check it
"$W" $NOSRV --rank 1 --num-workers 2 --train "$D/c.train" --test "$D/nope.test" \
    --connect-timeout 0.3 >"$D/r1.log" 2>&1
grep -q "nope.test" "$D/r1.log" && fail "worker 1 checked --test: $(cat "$D/r1.log")"
grep -q "cannot reach the servers" "$D/r1.log" || fail "worker 1 did not get to the servers: $(cat "$D/r1.log")"
echo "ok: --test is checked by worker 0 only"
if [ "$(id -u)" != 0 ]; then   # root reads anything
    cp "$D/c.train" "$D/locked.train"; chmod 000 "$D/locked.train"
    expect_fail 2 "--train $D/locked.train: cannot read it" $NOSRV --train "$D/locked.train"
fi

# ---- a good job: the cache location is printed once, the cache is there --------------------------------
start_servers 1 --model lr
mkdir "$D/cache"
"$W" --servers "$SERVERS" --model lr --train "$D/c.train" --test "$D/c.test" --epochs 2 \
    --cache-dir "$D/cache" >"$D/good.log" 2>&1 || fail "the good job failed: $(tail -5 "$D/good.log")"
n=$(grep -c "binary data cache: $D/cache/c.train.zpscache" "$D/good.log")
[ "$n" -eq 1 ] || fail "the cache location was printed $n times: $(grep cache "$D/good.log")"
cache=$(sed -n "s|.*binary data cache: \($D/cache/[^ ]*\) .*|\1|p" "$D/good.log")
[ -s "$cache" ] || fail "no cache file at the printed location $cache: $(ls -l "$D/cache")"
grep -q "epoch 2/2 done: 3000 rows .* from cache" "$D/good.log" || fail "epoch 2 did not read the cache"
echo "ok: the cache location is printed once ($cache) and epoch 2 read it"
"$W" --servers "$SERVERS" --model lr --train "$D/c.train" --no-cache >"$D/nc.log" 2>&1 ||
    fail "the --no-cache job failed"
grep -q "binary data cache: off (--no-cache)" "$D/nc.log" || fail "--no-cache not reported"
echo "ok: --no-cache is reported"
echo "it_inputs: ok"
