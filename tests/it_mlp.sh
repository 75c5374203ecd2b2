#!/bin/sh
# The mlp on IDX data with default options, 2 servers x 2 async workers:
# a generated image set (10 classes of noisy templates, 12x12 pixels) in the
# MNIST file format, images gzip-compressed, labels plain.  Checks that
#   - the launcher job with only --model/--layers/--train/--test reaches a
#     test accuracy bar (0.93; the set's ceiling is ~0.96, a reader that
#     misaligns labels and images or a model that does not learn gets ~0.10);
#   - the two workers read disjoint halves: 10000 rows each, per epoch;
#   - zps-predict reads the IDX pair (--format idx, labels named explicitly)
#     and scores the saved model to the same bar, one line per image;
#   - a truncated labels file is refused with an error naming it.
. "$(dirname "$0")/lib.sh"
LAUNCH="$(pwd)/scripts/zps-launch --bin $ZPS_BIN"
D=$TMP

# gen N NOISE SEED PREFIX: N images of 12x12 pixels; class c's template has
# ~30% of its pixels on (100..255), the rest 0; each image is its class's
# template plus Gaussian noise (sd NOISE), clipped to 0..255.
gen() {
    perl -e '
        my ($n, $noise, $seed, $out) = @ARGV;
        my $F = 144;
        srand(12345);
        my @tpl;
        for my $c (0 .. 9) { for my $p (0 .. $F - 1) { $tpl[$c][$p] = rand() < 0.3 ? 100 + int(rand(156)) : 0 } }
        srand($seed);
        open(my $im, ">", "$out-images-idx3-ubyte") or die "$out: $!";
        open(my $lb, ">", "$out-labels-idx1-ubyte") or die "$out: $!";
        binmode $im; binmode $lb;
        print $im pack("NNNN", 0x803, $n, 12, 12);
        print $lb pack("NN", 0x801, $n);
        for my $i (1 .. $n) {
            my $c = int(rand(10));
            my @px;
            for my $p (0 .. $F - 1) {
                my $g = sqrt(-2 * log(1 - rand())) * cos(6.283185307 * rand());
                my $v = int($tpl[$c][$p] + $noise * $g);
                push @px, $v < 0 ? 0 : $v > 255 ? 255 : $v;
            }
            print $im pack("C*", @px);
            print $lb pack("C", $c);
        }' "$@" || fail "generating $4 failed"
}
gen 20000 250 1 "$D/tr"
gen 4000 250 2 "$D/te"
gzip "$D/tr-images-idx3-ubyte"
[ "$(wc -c <"$D/te-images-idx3-ubyte")" -eq $((16 + 4000 * 144)) ] || fail "generated test images have the wrong size"

# ---- 1. defaults, 2 servers x 2 async workers; labels found by the MNIST naming ----
$LAUNCH --servers 2 --workers 2 --save-model "$D/model" -- --model mlp --layers 144,64,10 \
    --train "$D/tr-images-idx3-ubyte.gz" --test "$D/te-images-idx3-ubyte" >"$D/job.out" 2>&1 ||
    fail "mlp job failed: $(tail -20 "$D/job.out")"
acc=$(grep "worker/0 .*test: " "$D/job.out" | tail -1 | sed -n 's/.*accuracy \([0-9.]*\).*/\1/p')
[ -n "$acc" ] || fail "worker 0 printed no test accuracy: $(tail -20 "$D/job.out")"
epochs=$(grep -c "worker/0 .*test: " "$D/job.out")
echo "mlp 144-64-10, defaults, 2x2 async: test accuracy $acc after $epochs epochs"
awk "BEGIN { exit !($acc >= 0.93) }" || fail "test accuracy $acc < 0.93"
for w in 0 1; do
    rows=$(grep "worker/$w .*epoch 1/[0-9]* done:" "$D/job.out" | sed -n 's/.*done: \([0-9]*\) rows.*/\1/p')
    [ "$rows" = 10000 ] || fail "worker $w read '$rows' rows in epoch 1, want 10000 (half of 20000)"
done
echo "ok: each worker read its 10000 rows"

# ---- 2. zps-predict on the IDX pair ------------------------------------------------------
"$ZPS_BIN/zps-predict" --model "$D/model" --format idx \
    --data "$D/te-images-idx3-ubyte,$D/te-labels-idx1-ubyte" --out "$D/pred" --metrics \
    >"$D/metrics" 2>"$D/predict.log" || fail "zps-predict failed: $(cat "$D/predict.log")"
pacc=$(awk '{for (i = 1; i < NF; i++) if ($i == "accuracy") print $(i + 1)}' "$D/metrics")
echo "zps-predict: accuracy $pacc"
awk "BEGIN { exit !($pacc >= 0.93) }" || fail "zps-predict accuracy $pacc < 0.93"
[ "$(wc -l <"$D/pred")" -eq 4000 ] || fail "want one prediction per test image"

# ---- 3. a truncated labels file is named in the error -------------------------------------
head -c 3000 "$D/te-labels-idx1-ubyte" >"$D/cut-labels"
if "$ZPS_BIN/zps-predict" --model "$D/model" --data "$D/te-images-idx3-ubyte,$D/cut-labels" \
    --out "$D/pred2" >"$D/cut.out" 2>&1; then
    fail "zps-predict accepted a truncated labels file"
fi
grep -q "$D/cut-labels: file is 3000 bytes; its header" "$D/cut.out" ||
    fail "no error naming the truncated file: $(cat "$D/cut.out")"
echo "ok: truncated labels file refused"
echo "it_mlp: ok"
