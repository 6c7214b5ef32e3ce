#!/bin/bash
# Peak RSS (GNU time -v) of one `gankit train mnist-dcgan` run, then its classifier score on 10,000 samples.
# usage: benchmarks/peak_rss.sh SRC_DIR SEED OUT_PREFIX [IMAGES [--set KEY=VALUE ...]]
#   SRC_DIR: the src/ folder of the gankit checkout to measure (e.g. a `git worktree` of an older commit)
#   IMAGES 0 (the default) trains the preset's 5 epochs; further arguments go to `gankit train`
#   writes OUT_PREFIX.log (start/end times, load averages), .time (GNU time -v), .run/ and .eval.json
# Needs MNIST in $GANKIT_DATA_DIR/mnist. Run one at a time, with the same OMP_NUM_THREADS for every run compared.
set -u
SRC=$1; SEED=$2; OUT=$3; IMAGES=${4:-0}
shift $(( $# < 4 ? $# : 4 ))
export PYTHONPATH=$SRC
MNIST=${GANKIT_DATA_DIR:-../shared/data}/mnist
rm -rf "$OUT.run"
echo "start $(date -u +%FT%TZ) load $(cat /proc/loadavg)" > "$OUT.log"
/usr/bin/time -v python -m gankit train mnist-dcgan --data-dir "$MNIST" --run-dir "$OUT.run" --set train.seed="$SEED" \
    --set train.images="$IMAGES" --set train.progress=false --set train.tensorboard=false "$@" >> "$OUT.log" 2> "$OUT.time"
echo "train rc $? end $(date -u +%FT%TZ) load $(cat /proc/loadavg)" >> "$OUT.log"
python -m gankit evaluate "$OUT.run" --data-dir "$MNIST" --metrics cs --n 10000 --json > "$OUT.eval.json" 2> "$OUT.eval.err"
echo "eval rc $? end $(date -u +%FT%TZ) load $(cat /proc/loadavg)" >> "$OUT.log"
grep "Maximum resident" "$OUT.time"
