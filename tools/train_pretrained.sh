#!/usr/bin/env bash
# Reproduce the pretrained models shipped in data/pretrained/ (the exact commands that made them).
#
#   tools/train_pretrained.sh impact   DATA_DIR RUN_DIR   # hcmt-impact-plate-2d and mgn-impact-plate-2d
#   RECIPE=noise tools/train_pretrained.sh impact DATA_DIR RUN_DIR  # the same without pushforward (see below)
#   tools/train_pretrained.sh impact-kinematic DATA_DIR RUN_DIR  # hcmt-impact-plate-2d-kinematic (ball as input)
#   tools/train_pretrained.sh plate3d  DATA_DIR RUN_DIR   # hcmt-deforming-plate-3d
#
# Each model trains on one thread (torch's threads on a shared 2-core machine wait on each other) until its CPU
# budget (cpu_limit_minutes) or its wall-clock guard is spent, with the learning rate decaying 10x over that
# budget, keeping snapshots at CPU minutes for the learning curve (benchmarks/learning_curve.py). Runs resume:
# re-running the same command continues from RUN_DIR/<model>/checkpoints/last.pt.
#
# SEED=S (default 0, the shipped models' seed): another seed of the same recipe, to size the seed spread.
# MODELS='hcmt' (impact; default 'hcmt mgn'): train only these of the two impact models, e.g. to try an option on one.
# OVERRIDES='key=value ...': more config overrides for every run, e.g. on a GPU
# OVERRIDES='device=cuda batch_size=8 num_workers=3' (benchmarks/RESULTS.md, "GPU learning curve").
# EXTEND_MINUTES='E1 E2 ...' (impact): once both runs have spent CPU_MINUTES, continue them to E1, then E2, ... CPU
# minutes, each stage's learning rate going on from where the last one ended, decaying 10x per Ek minutes
# (lr_0 * 0.1^(t / CPU_MINUTES) up to CPU_MINUTES, then lr(CPU_MINUTES) * 0.1^((t - CPU_MINUTES) / E1), ...:
# continuous where they meet), each stage under EXTEND_WALL_MINUTES. A stage already spent is skipped, so adding a
# stage to a finished run's command continues that run.
set -euo pipefail
which="${1:?impact, impact-kinematic or plate3d}"; data="${2:?data folder}"; runs="${3:?run folder}"
meshsim="${MESHSIM:-meshsim}"
recipes="$(cd "$(dirname "$0")/../data" && pwd)"  # the training recipes, found wherever the script is run from
models="${MODELS:-hcmt mgn}"  # the impact models to train
for kind in $models; do
  case "$kind" in hcmt|mgn) ;; *) echo "MODELS must list hcmt and/or mgn, got '${MODELS}'" >&2; exit 2 ;; esac
done
mkdir -p "$data" "$runs"
generate() {  # scene file num seed: skipped when the file exists, so re-running the script resumes training
  [ -f "$data/$2" ] || "$meshsim" generate "$1" --num "$3" --seed "$4" --out "$data/$2" preset=benchmark
}
impact_data() {  # the impact-plate stores every impact model trains, validates and is tested on
  generate impact-plate-2d train.h5 40 0; generate impact-plate-2d valid.h5 8 1; generate impact-plate-2d test.h5 8 2
}
train() {  # name recipe minutes-cpu minutes-wall [overrides...]: trains on $data/train.h5, validates on valid.h5
  local name="$1" recipe="$2" cpu="$3" wall="$4"; shift 4
  local resume=(); [ -f "$runs/$name/checkpoints/last.pt" ] && resume=(--resume)
  "$meshsim" train "$recipe" --run-dir "$runs/$name" --threads 1 "${resume[@]}" steps=10000000 \
    cpu_limit_minutes="$cpu" time_limit_minutes="$wall" optim.over_budget=true seed="${SEED:-0}" \
    "snapshot_cpu_minutes=[5, 15, 30, 45, 60, 90, 120]" val_interval=250 checkpoint_interval=100 \
    "train_data=[$data/train.h5]" "valid_data=[$data/valid.h5]" "$@" ${OVERRIDES:-}
}
extend() {  # name recipe minutes-wall [overrides...]: the run continued through the EXTEND_MINUTES stages
  local name="$1" recipe="$2" wall="$3"; shift 3
  local from="${CPU_MINUTES:-120}" lr_end="$(python3 -c "print(${LR:-1e-3} * 0.1)")" to lr
  for to in $EXTEND_MINUTES; do
    # the schedule is optim.lr * 0.1^(t / to) over the whole run: optim.lr is set so that it meets lr_end at t = from
    lr=$(python3 -c "print($lr_end * 0.1 ** (-$from / $to))")
    train "$name" "$recipe" "$to" "$wall" optim.lr="$lr" "$@"  # resumes: last.pt exists after the first budget
    lr_end=$(python3 -c "print($lr * 0.1)"); from="$to"  # a stage ends at a tenth of its optim.lr
  done
}
# RECIPE=noise (impact): MeshGraphNets' stabiliser instead of the recipes' pushforward loss: no unroll, larger noise
# of which the target corrects a tenth (pushforward damps the plate towards rest; docs/training.md)
case "${RECIPE:-pushforward}" in
  pushforward) recipe_overrides=() ;;
  noise) recipe_overrides=(unroll_steps=1 model.noise_std=2e-4 model.noise_gamma=0.1) ;;
  *) echo "RECIPE must be pushforward or noise, got ${RECIPE}" >&2; exit 2 ;;
esac
case "$which" in
  impact)
    impact_data
    for kind in $models; do
      train "$kind-impact-plate-2d" "$recipes/train_${kind}_impact_plate.yaml" "${CPU_MINUTES:-120}" "${WALL_MINUTES:-240}" \
        val_rollouts=2 "${recipe_overrides[@]}" &
    done
    wait
    if [ -n "${EXTEND_MINUTES:-}" ]; then
      for kind in $models; do
        extend "$kind-impact-plate-2d" "$recipes/train_${kind}_impact_plate.yaml" "${EXTEND_WALL_MINUTES:-240}" \
          val_rollouts=2 "${recipe_overrides[@]}" &
      done
      wait
    fi ;;
  impact-kinematic)  # the ball's motion is given (as DeepMind's deforming_plate actuator); only the plate is learned
    impact_data
    train hcmt-impact-plate-2d-kinematic "$recipes/train_hcmt_impact_plate.yaml" "${CPU_MINUTES:-120}" "${WALL_MINUTES:-240}" \
      val_rollouts=2 "model.predicted_types=[NORMAL]" model.kinematic_input=true ;;
  plate3d)
    generate deforming-plate-3d train.h5 24 0; generate deforming-plate-3d valid.h5 4 1
    generate deforming-plate-3d test.h5 8 2
    train hcmt-deforming-plate-3d "$recipes/train_hcmt_deforming_plate.yaml" "${CPU_MINUTES:-120}" "${WALL_MINUTES:-240}" \
      val_rollouts=1 ;;
  *) echo "usage: tools/train_pretrained.sh impact|impact-kinematic|plate3d DATA_DIR RUN_DIR" >&2; exit 2 ;;
esac
