#!/bin/sh
# Gradient compression: every option still trains lr to the quality bar of
# the training test; the residual accounting of error feedback; mlp with
# top-k + momentum correction.
. "$(dirname "$0")/lib.sh"
LAUNCH="$(pwd)/scripts/zps-launch --bin $ZPS_BIN"
D=$TMP
metric() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' "$2"; }

"$ZPS_BIN/zps-datagen" ctr --rows 200000 --test-rows 20000 --features 1000 --nnz 40 --seed 41 \
    --out "$D/c" >/dev/null 2>&1 || fail "datagen failed"
tauc=$(sed -n 's/^test_auc=//p' "$D/c.truth")
for opt in none fp16 int8 keycache pull-fp16,int8,keycache topk:0.1 threshold:0.5,fp16; do
    $LAUNCH --servers 2 --workers 2 --save-model "$D/m" -- --model lr --optimizer ftrl --lr 0.1 \
        --epochs 3 --train "$D/c.train" --cache-dir "$D" --compress "$opt" >"$D/job.out" 2>&1 ||
        fail "--compress $opt: job failed: $(tail -5 "$D/job.out")"
    "$ZPS_BIN/zps-predict" --model "$D/m" --data "$D/c.test" --out "$D/p" --metrics >"$D/met" 2>/dev/null ||
        fail "--compress $opt: predict failed"
    auc=$(metric auc "$D/met")
    bpk=$(grep -h "traffic:" "$D/job.out" | sed -n 's/.*(\([0-9.]*\)x, \([0-9.]*\) B\/key).*/\2/p' | head -n 1)
    echo "--compress $opt: test AUC $auc (truth $tauc), push bytes per gradient key $bpk"
    awk "BEGIN { exit !($auc >= $tauc - 0.01) }" || fail "--compress $opt misses the quality bar"
done

# residual accounting: SGD with step 0.5 on the server, so the model holds
# w = -0.5 * (everything applied); for every key, applied + residual must equal
# the sum of the raw gradients the worker computed.
head -n 3000 "$D/c.train" >"$D/small.train"
for opt in topk:0.05 topk:0.2,int8 threshold:2,fp16; do
    $LAUNCH --servers 2 --workers 1 --save-model "$D/a" -- --model lr --optimizer sgd --lr 0.5 \
        --batch 100 --train "$D/small.train" --no-cache --compress "$opt" \
        --compress-audit "$D/audit" >"$D/a.out" 2>&1 || fail "audit job failed: $(tail -5 "$D/a.out")"
    # dump the model's weights through zps-predict's loader: one row per key
    "$ZPS_BIN/it_kv" dump-model --model "$D/a" >"$D/w" 2>"$D/dump.err" || fail "dump failed: $(cat "$D/dump.err")"
    awk 'NR == FNR { w[$1] = $2; next }
         { applied = -(($1 in w) ? w[$1] : 0) / 0.5; d = applied + $3 - $2; if (d < 0) d = -d;
           tol = 1e-3 + 1e-4 * ($2 < 0 ? -$2 : $2); n++;
           if (d > tol) { bad++; if (bad < 4) printf "key %s: raw %s applied %s residual %s\n", $1, $2, applied, $3 } }
         END { printf "%d keys, %d off\n", n, bad; exit bad > 0 }' "$D/w" "$D/audit" ||
        fail "--compress $opt: gradient mass was lost or invented"
    echo "ok: --compress $opt: applied + residual == raw gradient sum for every key"
done

# mlp: top-k 1% with momentum correction and fp16 still reaches the bar
"$ZPS_BIN/zps-datagen" multiclass --rows 20000 --test-rows 4000 --seed 43 --out "$D/mc" >/dev/null 2>&1 ||
    fail "datagen multiclass failed"
$LAUNCH --servers 2 --workers 2 --save-model "$D/mm" -- --model mlp --layers 32,128,10 \
    --optimizer sgd --lr 0.2 --epochs 15 --batch 100 --train "$D/mc.train" --no-cache \
    --compress topk:0.01,momentum:0.9,fp16 >"$D/mlp.out" 2>&1 || fail "mlp job failed: $(tail -5 "$D/mlp.out")"
"$ZPS_BIN/zps-predict" --model "$D/mm" --data "$D/mc.test" --out "$D/mp" --metrics >"$D/mmet" 2>/dev/null ||
    fail "mlp predict failed"
acc=$(metric accuracy "$D/mmet")
ratio=$(grep -h "worker/0.*traffic:" "$D/mlp.out" | sed -n 's/.*wire (\([0-9.]*\)x.*/\1/p')
echo "mlp topk 1% + momentum + fp16: accuracy $acc, pushes ${ratio}x smaller than raw"
awk "BEGIN { exit !($acc >= 0.95) }" || fail "mlp with top-k misses 95% accuracy"
awk "BEGIN { exit !($ratio >= 100) }" || fail "mlp pushes only ${ratio}x smaller"
echo "it_compress: ok"
