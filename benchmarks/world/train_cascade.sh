#!/usr/bin/env bash
# Reproduces the shipped world checkpoints (benchmarks/world/checkpoints/{early,final}); see TRAINING.md.
# Usage: bash benchmarks/world/train_cascade.sh <work-folder>   (from the repository root, after make setup)
# The three stages train independently (an SR stage learns from ground-truth low-res images), so they run
# side by side, one CPU thread each. Each stage trains to EARLY steps, its EMA export is kept as the early
# checkpoint, then the same run resumes to its final step (a constant learning rate after warm-up makes the
# resumed run identical to one that never stopped).
set -euo pipefail
WORK=${1:?usage: train_cascade.sh <work-folder>}
EARLY=${EARLY:-250}
BIN=${BIN:-$PWD/.venv/bin/imagen-bench}
mkdir -p "$WORK"
"$BIN" data world out="$WORK/world" n_train=10000 n_test=1000 seed=0 progress=false

train_stage() {  # stage batch final_steps bf16
  local stage=$1 batch=$2 steps=$3 bf16=$4
  local args=(data.root="$WORK/world/train" stage="$stage" training=world train.batch_size="$batch"
              train.bf16="$bf16" run_id="world-$stage" paths.runs_dir="$WORK/runs")
  OMP_NUM_THREADS=1 "$BIN" train "${args[@]}" train.steps="$EARLY"
  mkdir -p "$WORK/early"
  cp "$WORK/runs/world-$stage/checkpoints/$stage.safetensors" "$WORK/early/$stage.safetensors"
  OMP_NUM_THREADS=1 "$BIN" train "${args[@]}" train.steps="$steps"
  mkdir -p "$WORK/final"
  cp "$WORK/runs/world-$stage/checkpoints/$stage.safetensors" "$WORK/final/$stage.safetensors"
}

train_stage base32 32 "${BASE_STEPS:-1500}" false > "$WORK/base32.log" 2>&1 &
train_stage sr64 16 "${SR_STEPS:-1200}" false > "$WORK/sr64.log" 2>&1 &
train_stage sr128 16 "${SR_STEPS:-1200}" true > "$WORK/sr128.log" 2>&1 &
wait
echo "early: $WORK/early  final: $WORK/final"
