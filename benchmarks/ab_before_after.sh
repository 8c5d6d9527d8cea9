#!/usr/bin/env bash
# Interleaved before/after: softrl train sac (1 seed, paper defaults) on the old (086f13e) and new trees.
# usage: ab.sh NEW_TREE REPEATS ENV STEPS
set -u
. /work/venv/bin/activate
NEW=$1; REP=$2; ENV=$3; STEPS=$4
for r in $(seq 1 $REP); do
  for side in old new; do
    tree=${OLD_TREE:-/work/wt/old}; [ $side = new ] && tree=$NEW
    d=/tmp/ab_runs/$side-$ENV-$r; rm -rf $d
    out=$(cd /tmp && PYTHONPATH=$tree JAX_PLATFORMS=cpu python -m softrl.cli train sac --env $ENV --total-steps $STEPS \
        --learning-starts 1000 --eval-every 0 --eval-episodes 1 --checkpoint-every 0 --no-progress --run-dir $d 2>&1 | grep "env-steps/s")
    echo "$side $ENV $r $out"
  done
done
