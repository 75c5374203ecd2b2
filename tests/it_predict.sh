#!/bin/sh
# zps-predict on real use:
# - unlabeled rows: the rows of a labeled test file with their labels cut
#   off, read from stdin (plain and gzip), give byte-identical scores to the
#   labeled file read from disk (and from a directory, through the workers'
#   reader), for lr and fm on libsvm, lr on Criteo TSV (39 fields = no
#   label) and mlp (the predicted classes); a file mixing labeled and
#   unlabeled rows scores as the labeled file;
# - --metrics on labeled rows from stdin equals --metrics from the file, and
#   is refused naming <stdin>:LINE on an unlabeled row;
# - a bad row stops with FILE:LINE:COLUMN (and <stdin>:LINE:COLUMN), exit 1,
#   and no --out file appears; --skip-bad-lines scores the others; a
#   truncated gzip stream on stdin is an error;
# - --export: header lines, one line per key, sorted; for lr, awk computing
#   sigmoid(w[bias] + sum w[id] x) from the export reproduces zps-predict's
#   scores to 1e-6, and the export lists the model's exact key count;
# - --help states the input format.
. "$(dirname "$0")/lib.sh"
D=$TMP
P="$ZPS_BIN/zps-predict"
LAUNCH="$(pwd)/scripts/zps-launch --bin $ZPS_BIN"

"$P" --help | grep -q "a line whose first" || fail "--help does not state the unlabeled libsvm form"
"$P" --help | grep -q "line of 39" || fail "--help does not state the unlabeled criteo form"

"$ZPS_BIN/zps-datagen" ctr --rows 20000 --test-rows 3000 --features 3000 --seed 5 --interactions \
    --out "$D/c" >/dev/null 2>&1 || fail "datagen ctr failed"
cut -d' ' -f2- "$D/c.test" >"$D/c.unl"

# same_scores NAME MODEL-DIR LABELED UNLABELED: the file, the directory, stdin (plain, gzip)
same_scores() {
    "$P" --model "$2" --data "$3" --out "$D/$1.ref" 2>"$D/$1.err" || fail "$1: scoring $3 failed: $(cat "$D/$1.err")"
    [ "$(wc -l <"$D/$1.ref")" = "$(grep -c . "$3")" ] || fail "$1: $(wc -l <"$D/$1.ref") scores for $(grep -c . "$3") rows"
    "$P" --model "$2" <"$4" >"$D/$1.stdin" 2>"$D/$1.err" || fail "$1: stdin failed: $(cat "$D/$1.err")"
    cmp -s "$D/$1.ref" "$D/$1.stdin" || fail "$1: unlabeled rows from stdin score differently from the labeled file"
    gzip -c "$4" | "$P" --model "$2" --data - --out - >"$D/$1.gz" 2>"$D/$1.err" || fail "$1: gzip stdin failed: $(cat "$D/$1.err")"
    cmp -s "$D/$1.ref" "$D/$1.gz" || fail "$1: gzip stdin scores differ"
    mkdir -p "$D/$1.dir" && cp "$3" "$D/$1.dir/part"
    "$P" --model "$2" --data "$D/$1.dir" --out "$D/$1.fromdir" 2>"$D/$1.err" || fail "$1: directory failed: $(cat "$D/$1.err")"
    cmp -s "$D/$1.ref" "$D/$1.fromdir" || fail "$1: the workers' reader scores the file differently"
    grep -q "unlabeled" "$D/$1.err" || true
    echo "ok: $1: $(wc -l <"$D/$1.ref") unlabeled rows from stdin (plain and gzip) score as the labeled file and the directory"
}

# ---- lr on libsvm ----------------------------------------------------------------------
$LAUNCH --servers 2 --workers 2 --save-model "$D/lr" -- --model lr --train "$D/c.train" \
    --epochs 2 --no-cache >"$D/lr.out" 2>&1 || fail "lr job failed: $(tail -5 "$D/lr.out")"
same_scores lr "$D/lr" "$D/c.test" "$D/c.unl"

# labeled and unlabeled rows mixed, comments and blank lines: the same scores
awk 'NR % 2 { print; next } { sub(/^[^ ]+ /, ""); print } NR % 500 == 0 { print "# note"; print "" }' \
    "$D/c.test" >"$D/c.mixed"
"$P" --model "$D/lr" --data "$D/c.mixed" --out "$D/mixed.pred" 2>"$D/mixed.err" || fail "mixed: $(cat "$D/mixed.err")"
cmp -s "$D/mixed.pred" "$D/lr.ref" || fail "a file of labeled and unlabeled rows scores differently"
grep -q "scored 3000 rows (1500 unlabeled)" "$D/mixed.err" || fail "mixed: $(cat "$D/mixed.err")"
echo "ok: labeled and unlabeled rows mixed in one file: same scores, 1500 unlabeled counted"

# --metrics: from stdin = from the file (stdout holds the scores, stderr the metrics)
"$P" --model "$D/lr" --data "$D/c.test" --out "$D/m.pred" --metrics >"$D/m.file" 2>/dev/null || fail "--metrics (file)"
"$P" --model "$D/lr" --metrics <"$D/c.test" >"$D/m.stdin.pred" 2>"$D/m.stdin.err" || fail "--metrics (stdin)"
grep "^rows " "$D/m.stdin.err" | cmp -s - "$D/m.file" || fail "metrics differ: $(cat "$D/m.file") / $(cat "$D/m.stdin.err")"
grep -q "^rows 3000 logloss" "$D/m.file" || fail "metrics: $(cat "$D/m.file")"
if "$P" --model "$D/lr" --metrics <"$D/c.mixed" >/dev/null 2>"$D/m.err"; then fail "--metrics accepted unlabeled rows"; fi
grep -q "<stdin>:2: the row has no label; --metrics needs a label on every row" "$D/m.err" || fail "--metrics on unlabeled: $(cat "$D/m.err")"
echo "ok: --metrics from stdin equals --metrics from the file; refused on an unlabeled row, naming <stdin>:2"

# bad rows: FILE:LINE:COLUMN, exit 1, no --out file; --skip-bad-lines
{ head -n 4 "$D/c.unl"; echo "3:1 7:x"; head -n 2 "$D/c.unl"; } >"$D/bad.txt"
if "$P" --model "$D/lr" --data "$D/bad.txt" --out "$D/bad.pred" 2>"$D/bad.err"; then fail "a bad row was accepted"; fi
grep -q "$D/bad.txt:5:7: bad value 'x'" "$D/bad.err" || fail "bad row: $(cat "$D/bad.err")"
[ ! -e "$D/bad.pred" ] || fail "--out was written although a row was bad"
if "$P" --model "$D/lr" <"$D/bad.txt" >/dev/null 2>"$D/bad2.err"; then fail "a bad row from stdin was accepted"; fi
grep -q "<stdin>:5:7: bad value 'x'" "$D/bad2.err" || fail "bad row on stdin: $(cat "$D/bad2.err")"
"$P" --model "$D/lr" --data "$D/bad.txt" --skip-bad-lines >"$D/skip.pred" 2>"$D/skip.err" || fail "--skip-bad-lines: $(cat "$D/skip.err")"
[ "$(wc -l <"$D/skip.pred")" = 6 ] || fail "--skip-bad-lines scored $(wc -l <"$D/skip.pred") rows, not 6"
grep -q "skipped 1 bad lines, the first: $D/bad.txt:5:7" "$D/skip.err" || fail "skip: $(cat "$D/skip.err")"
printf 'not a row at all\n' | "$P" --model "$D/lr" >/dev/null 2>"$D/bad3.err" && fail "garbage accepted"
grep -q "<stdin>:1:1: bad label 'not'" "$D/bad3.err" || fail "garbage: $(cat "$D/bad3.err")"
head -n 50 "$D/c.unl" | gzip -c | head -c 300 >"$D/cut.gz"
if "$P" --model "$D/lr" <"$D/cut.gz" >/dev/null 2>"$D/cut.err"; then fail "a truncated gzip stream was accepted"; fi
grep -q "<stdin>:[0-9]*: gzip data: unexpected end of file" "$D/cut.err" || fail "truncated gzip: $(cat "$D/cut.err")"
echo "ok: bad rows name FILE:LINE:COLUMN (<stdin> too), exit 1, no --out file; --skip-bad-lines scores the rest"

# --export: header, sorted keys, exact key count; awk reproduces the scores
"$P" --model "$D/lr" --export --out "$D/lr.txt" 2>"$D/exp.err" || fail "--export: $(cat "$D/exp.err")"
grep -q "^# model lr dim 1 keys " "$D/lr.txt" || fail "export header: $(head -3 "$D/lr.txt")"
grep -q "^# table opt=" "$D/lr.txt" || fail "export header has no optimizer: $(head -4 "$D/lr.txt")"
nkeys=$(sed -n 's/^zps-predict: loaded lr model, \([0-9]*\) keys.*/\1/p' "$D/exp.err")
[ "$(grep -vc '^#' "$D/lr.txt")" = "$nkeys" ] || fail "export has $(grep -vc '^#' "$D/lr.txt") keys, the model $nkeys"
grep -v '^#' "$D/lr.txt" | cut -d' ' -f1 | sort -c -n 2>/dev/null || fail "export keys are not in increasing order"
"$P" --model "$D/lr" --export 2>/dev/null | cmp -s - "$D/lr.txt" || fail "--export to stdout differs from --out"
awk 'NR == FNR { if ($1 !~ /^#/) w[$1] = $2; next }
     { s = w["18446744073709551615"]; for (i = 2; i <= NF; i++) { split($i, kv, ":"); if (kv[1] in w) s += w[kv[1]] * kv[2] }
       printf "%.9g\n", 1 / (1 + exp(-s)) }' "$D/lr.txt" "$D/c.test" >"$D/awk.pred"
paste "$D/awk.pred" "$D/lr.ref" | awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d; n++ }
     END { printf "max |awk - zps-predict| = %g over %d rows\n", m, n; exit !(n == 3000 && m < 1e-6) }' >"$D/awk.cmp" ||
    fail "the export does not reproduce the scores: $(cat "$D/awk.cmp")"
echo "ok: --export: $nkeys keys, sorted; awk on the export reproduces zps-predict ($(cat "$D/awk.cmp"))"

# ---- fm on libsvm -------------------------------------------------------------------------
$LAUNCH --servers 1 --workers 2 --save-model "$D/fm" -- --model fm --dim 4 --train "$D/c.train" \
    --epochs 2 --no-cache >"$D/fm.out" 2>&1 || fail "fm job failed: $(tail -5 "$D/fm.out")"
same_scores fm "$D/fm" "$D/c.test" "$D/c.unl"
"$P" --model "$D/fm" --export 2>/dev/null | grep -q "^# columns: key w v1 .. v4" || fail "fm export header"
"$P" --model "$D/fm" --export 2>/dev/null | awk '!/^#/ && NF != 6 { bad++ } END { exit bad > 0 }' ||
    fail "fm export lines are not 'key w v1..v4'"

# ---- lr on Criteo TSV: 40 fields labeled, 39 unlabeled --------------------------------------
awk 'BEGIN { srand(3); for (r = 0; r < 6000; r++) { s = ""; y = 0;
       for (f = 1; f <= 39; f++) { if (rand() < 0.1) v = ""; else if (f <= 13) v = int(rand() * 50) - 2;
         else v = sprintf("%08x", int(rand() * 40) * 7919 + f); if (f == 14 && v != "" && v < "00010000") y = 1;
         s = s "\t" v }
       if (rand() < 0.1) y = 1 - y; print y s } }' >"$D/k.all"
head -n 5000 "$D/k.all" >"$D/k.train"
tail -n 1000 "$D/k.all" >"$D/k.test"
cut -f2- "$D/k.test" >"$D/k.unl"
$LAUNCH --servers 2 --workers 1 --save-model "$D/kl" -- --model lr --train "$D/k.train" \
    --epochs 2 --no-cache >"$D/kl.out" 2>&1 || fail "criteo job failed: $(tail -5 "$D/kl.out")"
same_scores criteo "$D/kl" "$D/k.test" "$D/k.unl"
cut -f3- "$D/k.test" | head -n 3 >"$D/k.short"
if "$P" --model "$D/kl" <"$D/k.short" >/dev/null 2>"$D/k.err"; then fail "a 38-field criteo row was accepted"; fi
grep -q "<stdin>:1:.*expected 40 tab-separated fields (39 without the label), got 38" "$D/k.err" ||
    fail "38 fields: $(cat "$D/k.err")"
echo "ok: criteo: a 38-field row is refused naming <stdin>:1 and the field counts"

# ---- mlp: unlabeled rows get the same predicted classes ------------------------------------------
"$ZPS_BIN/zps-datagen" multiclass --rows 4000 --test-rows 1000 --seed 9 --out "$D/mc" >/dev/null 2>&1 ||
    fail "datagen multiclass failed"
cut -d' ' -f2- "$D/mc.test" >"$D/mc.unl"
$LAUNCH --servers 1 --workers 1 --save-model "$D/mlp" -- --model mlp --layers 32,16,10 \
    --train "$D/mc.train" --epochs 1 --no-cache >"$D/mlp.out" 2>&1 || fail "mlp job failed: $(tail -5 "$D/mlp.out")"
same_scores mlp "$D/mlp" "$D/mc.test" "$D/mc.unl"
echo "it_predict: all passed"
