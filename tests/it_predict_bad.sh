#!/bin/bash
# zps-predict on hostile input: every error names
# FILE:LINE (or <stdin>:LINE, or the model file), exits 1 and leaves no
# --out file behind:
# - a malformed row, a NUL byte inside a row ("NUL byte", not "bad label ''"),
#   a 70 MB line, a truncated gzip stream and a non-gzip stream after the
#   gzip magic on stdin;
# - CRLF line ends score as LF ones; an empty stdin scores 0 rows (exit 0);
# - --out in a missing directory: refused before reading, nothing created;
#   empty --model, --data or --out paths: usage errors (exit 2);
# - damaged models: a missing shard, a truncated shard, a flipped byte, an
#   empty manifest, a manifest whose model line disagrees with its options;
# - --export of lr, fm and mlp models: the header's key count is the line
#   count, and a damaged model exports nothing;
# - under valgrind (when installed, and not the ASan build) the scoring, an
#   error path and an export are clean.
. "$(dirname "$0")/lib.sh"
D=$TMP
P="$ZPS_BIN/zps-predict"
LAUNCH="$(pwd)/scripts/zps-launch --bin $ZPS_BIN"

"$ZPS_BIN/zps-datagen" ctr --rows 3000 --test-rows 200 --features 300 --seed 5 --out "$D/c" >/dev/null 2>&1 ||
    fail "datagen ctr failed"
"$ZPS_BIN/zps-datagen" multiclass --rows 600 --test-rows 50 --seed 9 --out "$D/mc" >/dev/null 2>&1 ||
    fail "datagen multiclass failed"
$LAUNCH --servers 2 --workers 1 --save-model "$D/lr" -- --model lr --train "$D/c.train" --epochs 1 \
    --no-cache >"$D/lr.log" 2>&1 || fail "lr job failed: $(tail -5 "$D/lr.log")"
$LAUNCH --servers 1 --workers 1 --save-model "$D/fm" -- --model fm --dim 3 --train "$D/c.train" \
    --epochs 1 --no-cache >"$D/fm.log" 2>&1 || fail "fm job failed: $(tail -5 "$D/fm.log")"
$LAUNCH --servers 1 --workers 1 --save-model "$D/mlp" -- --model mlp --layers 8,10 \
    --train "$D/mc.train" --epochs 1 --no-cache >"$D/mlp.log" 2>&1 || fail "mlp job failed: $(tail -5 "$D/mlp.log")"

# refused NAME MESSAGE-REGEX [zps-predict args...] < input: exit 1, the message, no --out file
refused() {
    name=$1 re=$2; shift 2
    rm -f "$D/out.pred"
    "$P" "$@" --out "$D/out.pred" >/dev/null 2>"$D/$name.err"
    rc=$?
    [ $rc = 1 ] || fail "$name: exit $rc, not 1: $(cat "$D/$name.err")"
    grep -Eq -- "$re" "$D/$name.err" || fail "$name: the message does not match '$re': $(cat "$D/$name.err")"
    [ ! -e "$D/out.pred" ] || fail "$name: --out was written"
    ! ls -A "$D" | grep -q 'out\.pred' || fail "$name: left $(ls -A "$D" | grep 'out\.pred')"
    echo "ok: $name: $(grep -Ev 'loaded|scored' "$D/$name.err" | head -1)"
}

# ---- rows ------------------------------------------------------------------------------
printf '1 3:1\n1 x:1\n' | refused malformed "<stdin>:2:3: bad feature id 'x:1'" --model "$D/lr"
printf '1 3:1\n1 3:1\0 4:1\n' | refused nul "<stdin>:2:6: NUL byte in the line" --model "$D/lr"
printf '\0 3:1\n' | refused nul-label "<stdin>:1:1: NUL byte in the line" --model "$D/lr"
printf '1 3:1\n' >"$D/big.txt"
head -c 70000000 /dev/zero | tr '\0' '7' >>"$D/big.txt"
refused huge-line "$D/big.txt:2: line longer than 64 MiB" --model "$D/lr" --data "$D/big.txt" </dev/null
head -n 80 "$D/c.test" | gzip -c | head -c 400 | refused truncated-gzip \
    "<stdin>:[0-9]+: gzip data: unexpected end of file" --model "$D/lr"
printf '\037\213not gzip at all' | refused gzip-garbage "<stdin>:1: gzip data: " --model "$D/lr"

# CRLF = LF; empty stdin = 0 rows
head -n 20 "$D/c.test" >"$D/lf.txt"
sed 's/$/\r/' "$D/lf.txt" >"$D/crlf.txt"
"$P" --model "$D/lr" <"$D/lf.txt" >"$D/lf.pred" 2>/dev/null || fail "LF rows failed"
"$P" --model "$D/lr" <"$D/crlf.txt" >"$D/crlf.pred" 2>"$D/crlf.err" || fail "CRLF rows failed: $(cat "$D/crlf.err")"
cmp -s "$D/lf.pred" "$D/crlf.pred" || fail "CRLF rows score differently from LF rows"
cut -d' ' -f2- "$D/crlf.txt" | "$P" --model "$D/lr" >"$D/crlf2.pred" 2>/dev/null || fail "unlabeled CRLF rows failed"
cmp -s "$D/lf.pred" "$D/crlf2.pred" || fail "unlabeled CRLF rows score differently"
"$P" --model "$D/lr" --out "$D/empty.pred" </dev/null 2>"$D/empty.err" || fail "empty stdin: $(cat "$D/empty.err")"
[ -f "$D/empty.pred" ] && [ ! -s "$D/empty.pred" ] || fail "empty stdin: --out is not an empty file"
grep -q "scored 0 rows" "$D/empty.err" || fail "empty stdin: $(cat "$D/empty.err")"
echo "ok: CRLF rows (labeled and not) score as LF rows; an empty stdin scores 0 rows"

# --out in a missing directory
rm -rf "$D/nodir"
printf '1 3:1\n' | "$P" --model "$D/lr" --out "$D/nodir/x.pred" >/dev/null 2>"$D/nodir.err" && fail "--out in a missing directory accepted"
grep -q "cannot write $D/nodir/x.pred: .*No such file or directory" "$D/nodir.err" || fail "--out nodir: $(cat "$D/nodir.err")"
[ ! -e "$D/nodir" ] || fail "--out created the missing directory"
echo "ok: --out in a missing directory: $(cat "$D/nodir.err")"

# empty paths: usage errors (exit 2)
for a in "--model ''" "--model $D/lr --data ''" "--model $D/lr --out ''"; do
    eval "\"\$P\" $a" </dev/null >/dev/null 2>"$D/empty-arg.err"
    rc=$?
    [ $rc = 2 ] && grep -q "is given an empty path" "$D/empty-arg.err" || fail "$a: exit $rc: $(cat "$D/empty-arg.err")"
done
echo "ok: empty --model, --data, --out paths are usage errors"

# ---- damaged models ------------------------------------------------------------------------
damage() { rm -rf "$D/$1"; cp -r "$D/lr" "$D/$1"; }
damage m1; rm "$D/m1/shard-1-of-2.bin"
refused missing-shard "m1/shard-1-of-2.bin: No such file" --model "$D/m1" <"$D/lf.txt"
damage m2; truncate -s 100 "$D/m2/shard-0-of-2.bin"
refused truncated-shard "m2/shard-0-of-2.bin: truncated" --model "$D/m2" <"$D/lf.txt"
damage m3; printf 'x' | dd of="$D/m3/shard-0-of-2.bin" bs=1 seek=200 conv=notrunc 2>/dev/null
refused flipped-byte "m3/shard-0-of-2.bin: .*corrupt" --model "$D/m3" <"$D/lf.txt"
damage m4; : >"$D/m4/manifest"
refused empty-manifest "m4/manifest" --model "$D/m4" <"$D/lf.txt"
damage m5; sed -i 's/^model lr/model fm/' "$D/m5/manifest"
refused model-mismatch "m5/manifest: model fm, but its options say --model lr" --model "$D/m5" <"$D/lf.txt"
refused export-damaged "m2/shard-0-of-2.bin: truncated" --model "$D/m2" --export

# ---- --export of every model kind --------------------------------------------------------------
for m in lr fm mlp; do
    "$P" --model "$D/$m" --export --out "$D/$m.exp" 2>"$D/$m.exp.err" || fail "$m export: $(cat "$D/$m.exp.err")"
    keys=$(sed -n 's/^# model .* keys \([0-9]*\) .*/\1/p' "$D/$m.exp")
    [ -n "$keys" ] && [ "$keys" -gt 0 ] || fail "$m export: no key count in the header: $(head -3 "$D/$m.exp")"
    [ "$(grep -vc '^#' "$D/$m.exp")" = "$keys" ] || fail "$m export: $(grep -vc '^#' "$D/$m.exp") lines for $keys keys"
    echo "ok: --export $m: $keys keys, one line each"
done

# ---- valgrind ------------------------------------------------------------------------------------
case $ZPS_BIN in *asan*) echo "valgrind: not with the ASan build"; echo "it_predict_bad: all passed"; exit 0 ;; esac
if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind: not installed, skipped (scripts/install-deps installs it)"
    echo "it_predict_bad: all passed"
    exit 0
fi
VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite"
cut -d' ' -f2- "$D/lf.txt" | gzip -c | $VG "$P" --model "$D/fm" >/dev/null 2>"$D/vg1.err" || fail "valgrind, scoring: $(cat "$D/vg1.err")"
printf '1 3:1\n1 3:1\0 4:1\n' | $VG "$P" --model "$D/lr" >/dev/null 2>"$D/vg2.err"
[ $? = 1 ] || fail "valgrind, a bad row: $(cat "$D/vg2.err")"
head -n 80 "$D/c.test" | gzip -c | head -c 400 | $VG "$P" --model "$D/lr" >/dev/null 2>"$D/vg3.err"
[ $? = 1 ] || fail "valgrind, truncated gzip: $(cat "$D/vg3.err")"
$VG "$P" --model "$D/mlp" --export >/dev/null 2>"$D/vg4.err" || fail "valgrind, export: $(cat "$D/vg4.err")"
$VG "$P" --model "$D/m3" </dev/null >/dev/null 2>"$D/vg5.err"
[ $? = 1 ] || fail "valgrind, a corrupt model: $(cat "$D/vg5.err")"
echo "ok: valgrind: scoring gzip stdin, a bad row, a truncated stream, an export, a corrupt model: clean"
echo "it_predict_bad: all passed"
