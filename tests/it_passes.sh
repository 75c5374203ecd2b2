#!/bin/sh
# --epochs auto (the default): a holdout picked in the first pass, scored
# after every pass, the run stops when it stops improving and says why;
# --epochs N runs exactly N passes without a holdout; the step-size
# diagnostics (once each) for an absurdly small and a huge --lr; fm with
# defaults against lr on data with and without pairwise interactions; the
# step's growth (and its step back) on text-like data, local and 2x2.
# Everything runs --local except one 2 servers x 2 workers job.  Seeds are
# fixed: the local runs are deterministic.
. "$(dirname "$0")/lib.sh"
D=$TMP
W="$ZPS_BIN/zps-worker"
"$ZPS_BIN/zps-datagen" ctr --features 1000 --rows 30000 --test-rows 5000 --seed 7 --out "$D/c" \
    >/dev/null || fail "datagen failed"
"$ZPS_BIN/zps-datagen" ctr --features 200 --nnz 20 --rows 40000 --test-rows 10000 --interactions \
    --seed 3 --out "$D/ci" >/dev/null || fail "datagen (interactions) failed"
# last NAME FILE: value after NAME on the last "test:" line
last() { grep "test: logloss" "$2" | tail -1 | awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}'; }
check() { if awk "BEGIN { exit !($2) }"; then echo "ok: $1"; else fail "$1 ($2)"; fi; }

# ---- 1. defaults: auto passes ------------------------------------------------------------
"$W" --local --train "$D/c.train" --test "$D/c.test" --no-cache --progress-every 0.001 \
    >"$D/auto.log" 2>&1 || fail "default run failed"
grep -q "epochs auto (at most 30" "$D/auto.log" || fail "no 'epochs auto' in the start line"
stop=$(grep "stopping after" "$D/auto.log")
[ "$(grep -c "stopping after" "$D/auto.log")" = 1 ] || fail "expected one 'stopping after' line"
n=$(echo "$stop" | sed 's/.*stopping after \([0-9]*\) passes.*/\1/')
echo "$stop" | grep -q "did not improve by 0.1% on the best" || fail "stop reason missing: $stop"
check "auto stopped after $n passes (2..30)" "$n >= 2 && $n <= 30"
[ "$(grep -c "/auto holdout: logloss" "$D/auto.log")" = "$n" ] || fail "one holdout line per pass expected"
[ "$(grep -c "/auto done" "$D/auto.log")" = "$n" ] || fail "$n passes expected"
grep -q "holdout: [0-9]* rows of this worker's data" "$D/auto.log" || fail "holdout size not logged"
grep -q "epoch 2/auto .*| holdout loss 0\.[0-9]*" "$D/auto.log" || fail "no holdout loss in the progress lines"
ho=$(grep "holdout: [0-9]* rows" "$D/auto.log" | sed 's/.*holdout: \([0-9]*\) rows.*/\1/')
rows=$(grep "epoch 1/auto done" "$D/auto.log" | sed 's/.*done: \([0-9]*\) rows.*/\1/')
check "holdout $ho + trained $rows rows = 30000" "$ho + $rows == 30000"
check "holdout about 1 in 20 rows" "$ho >= 1200 && $ho <= 1800"
grep -q "warn" "$D/auto.log" && fail "defaults warned: $(grep warn "$D/auto.log")"
auc=$(last auc "$D/auto.log"); tauc=$(sed -n 's/^test_auc=//p' "$D/c.truth")
check "auto AUC $auc within 0.025 of the truth $tauc" "$auc >= $tauc - 0.025"

# ---- 2. --epochs N: exactly N passes, no holdout --------------------------------------
"$W" --local --train "$D/c.train" --test "$D/c.test" --no-cache --epochs 3 >"$D/e3.log" 2>&1 ||
    fail "--epochs 3 failed"
[ "$(grep -c "epoch [0-9]/3 done: 30000 rows" "$D/e3.log")" = 3 ] || fail "--epochs 3: 3 passes of all rows expected"
grep -q "holdout\|stopping after\|epoch 4/" "$D/e3.log" && fail "--epochs 3 used a holdout or ran on"
echo "ok: --epochs 3 ran 3 passes over all 30000 rows"

# ---- 3. diagnostics, once each ---------------------------------------------------------
"$W" --local --train "$D/c.train" --no-cache --lr 1e-6 >"$D/small.log" 2>&1 || fail "--lr 1e-6 failed"
[ "$(grep -c "step size looks too small.*raise --lr (now 1e-06" "$D/small.log")" = 1 ] ||
    fail "--lr 1e-6: one 'too small' warning expected"
grep -q "diverges" "$D/small.log" && fail "--lr 1e-6 said diverges"
echo "ok: --lr 1e-6: $(grep -o "the step size looks too small: after pass [0-9]*" "$D/small.log")"
"$W" --local --train "$D/c.train" --no-cache --lr 10000 >"$D/large.log" 2>&1 || fail "--lr 10000 failed"
[ "$(grep -c "the loss diverges.*lower --lr (now 10000" "$D/large.log")" = 1 ] ||
    fail "--lr 10000: one 'diverges' warning expected"
grep -q "too small" "$D/large.log" && fail "--lr 10000 said too small"
echo "ok: --lr 10000: $(grep -o "the loss diverges: after pass [0-9]*" "$D/large.log")"
"$W" --local --train "$D/c.train" --no-cache --lr 1e-6 --epochs 2 --test "$D/c.test" >"$D/small2.log" 2>&1 ||
    fail "--lr 1e-6 --epochs 2 failed"
[ "$(grep -c "step size looks too small" "$D/small2.log")" = 1 ] || fail "--epochs 2 --lr 1e-6: one warning expected"
echo "ok: --epochs 2 --lr 1e-6 warns too (from the test set)"

# ---- 4. 2 servers x 2 workers, async: each worker stops on its own holdout ---------------
# (judged on the saved model, once every worker has stopped: what worker 0
# scores when it stops depends on how far the other worker got meanwhile)
scripts/zps-launch --bin "$ZPS_BIN" --servers 2 --workers 2 --save-model "$D/m22" -- --model lr \
    --train "$D/c.train" --test "$D/c.test" --no-cache >"$D/launch.log" 2>&1 ||
    fail "2x2 job failed: $(tail -5 "$D/launch.log")"
for r in 0 1; do
    grep -q "\[worker/$r\].*stopping after [0-9]* passes" "$D/launch.log" || fail "worker $r did not say why it stopped"
done
"$ZPS_BIN/zps-predict" --model "$D/m22" --data "$D/c.test" --out "$D/m22.pred" --metrics >"$D/m22.met" 2>/dev/null ||
    fail "predict of the 2x2 model failed"
# Quality bars for 2x2 are it_quality's (larger data, judged against
# LIBLINEAR); here, on 30000 rows with each worker stopping on its own
# 750-row holdout, the job's model is only checked to be a working one.
auc=$(awk '{ for (i = 1; i < NF; i++) if ($i == "auc") print $(i + 1) }' "$D/m22.met")
check "2x2 saved model AUC $auc (truth $tauc) is a working model" "$auc >= 0.7"

# ---- 5. fm against lr, defaults -------------------------------------------------------
# Without interactions (c) fm is at least as good as lr; with them (ci:
# ground truth near 0.80, lr about 0.725) it is clearly better: its first
# pass fits the linear part alone, then the embeddings learn the pairs.
for set in c ci; do
    for m in lr fm; do
        "$W" --local --model $m --train "$D/$set.train" --test "$D/$set.test" --no-cache \
            >"$D/$set.$m.log" 2>&1 || fail "$m on $set failed"
    done
    la=$(last auc "$D/$set.lr.log"); fa=$(last auc "$D/$set.fm.log")
    ll=$(last logloss "$D/$set.lr.log"); fl=$(last logloss "$D/$set.fm.log")
    echo "$set: lr logloss $ll auc $la, fm logloss $fl auc $fa"
    check "$set: fm AUC $fa >= lr $la - 0.003" "$fa >= $la - 0.003"
    check "$set: fm logloss $fl <= 1.01 x lr $ll" "$fl <= 1.01 * $ll"
    if [ $set = ci ]; then
        check "ci: fm AUC $fa >= lr $la + 0.03 (the pairs are learnt)" "$fa >= $la + 0.03"
        check "ci: fm logloss $fl <= 0.97 x lr $ll" "$fl <= 0.97 * $ll"
    fi
    grep -q "fm: pass 1 trains the bias and the linear weights only" "$D/$set.fm.log" ||
        fail "$set: no log line for fm's linear first pass"
done
# ---- 6. the step grows where the data wants a larger one, and steps back ------------------
# Text-like data (many rare features carrying a strong signal): the holdout
# loss falls by more than 5% a pass, so the step doubles; on this data (local,
# deterministic) the second doubling overshoots, so the step goes back and
# training goes on.  Then the same data 2x2: whatever the workers' steps do,
# the servers take them (no error replies) and the model is as good.
"$ZPS_BIN/zps-datagen" ctr --features 50000 --rows 20000 --nnz 20 --signal 6 --test-rows 5000 \
    --seed 5 --out "$D/t" >/dev/null || fail "datagen (text-like) failed"
"$W" --local --train "$D/t.train" --test "$D/t.test" --no-cache >"$D/grow.log" 2>&1 ||
    fail "default run on text-like data failed"
up=$(grep -c "step doubled" "$D/grow.log")
check "text-like data: the step doubled $up times" "$up >= 1"
grep -q "warn" "$D/grow.log" && fail "the step growth caused a warning: $(grep warn "$D/grow.log")"
if grep -q "step back" "$D/grow.log"; then
    # the pass that went back is not the last one, and no warning about the user's --lr
    back=$(grep "step back" "$D/grow.log" | head -1)
    after=$(sed -n '/step back/,$p' "$D/grow.log" | grep -c "/auto holdout: logloss")
    check "after the step went back ($(echo "$back" | sed 's/.*info: //' | cut -c1-60)...) $after more passes ran" "$after >= 1"
fi
n=$(grep "stopping after" "$D/grow.log" | sed 's/.*stopping after \([0-9]*\) passes.*/\1/')
check "text-like data: stopped after $n passes, more than the growths + 1" "$n > $up + 1"
scripts/zps-launch --bin "$ZPS_BIN" --servers 2 --workers 2 --save-model "$D/t22" -- --model lr \
    --train "$D/t.train" --no-cache >"$D/tlaunch.log" 2>&1 ||
    fail "2x2 job on text-like data failed: $(tail -5 "$D/tlaunch.log")"
# (whether a worker grows its step here depends on async timing: each has
# a ~470-row holdout whose second-pass fall lands near 5%; the multiplier's
# exact effect on the wire is tests/it_server_guard.sh's lrscale case)
grep -q "step multiplier" "$D/tlaunch.log" && fail "2x2: a server refused a step multiplier"
echo "2x2 text-like: $(grep -c "step doubled" "$D/tlaunch.log") step doublings over both workers"
"$ZPS_BIN/zps-predict" --model "$D/t22" --data "$D/t.test" --out "$D/t22.pred" --metrics >"$D/t22.met" 2>/dev/null ||
    fail "predict of the text-like 2x2 model failed"
auc=$(awk '{ for (i = 1; i < NF; i++) if ($i == "auc") print $(i + 1) }' "$D/t22.met")
lauc=$(last auc "$D/grow.log")
check "text-like 2x2 saved model AUC $auc within 0.03 of local $lauc" "$auc >= $lauc - 0.03"
echo "it_passes: ok"
