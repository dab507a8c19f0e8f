#!/usr/bin/env bash
# The GPU check of issue 13, as one command; what it measures lands in $OUT (default out/gpu-check), eight files:
# summary.txt, environment.log, parity.log, parity.json, benchmark.log, bench_gpu.json, training.log, kernels.log.
#
#   OUT=/some/dir FIXTURES=.gpu-fixtures benchmarks/gpu_check.sh     # on a CUDA machine: at most 575 s of steps
#   OUT=/tmp/x TINY=1 DEVICE=cpu benchmarks/gpu_check.sh              # smoke test of the script itself on a CPU
#
# FIXTURES is a folder holding copies of ../shared/parity and ../shared/parity_xl (default ../shared, which does not
# travel to a GPU machine; .gitignore ignores .gpu-fixtures/, so it travels only when carried). From a checkout whose
# ../shared exists, with the device tool (32 MB of fixtures):
#   mkdir -p .gpu-fixtures && cp -r ../shared/parity ../shared/parity_xl .gpu-fixtures/
#   run(command="OUT=$OUT FIXTURES=.gpu-fixtures benchmarks/gpu_check.sh", carry=[".gpu-fixtures"], timeout_s=600)
#
# Steps, most important first (each logs to $OUT/<step>.log and stops at its time limit; a failing or timed-out step is
# recorded in summary.txt and the next one still runs):
#   environment  nvidia-smi, torch / triton versions, `stylegan info --backends` (text and JSON)
#   parity       benchmarks/gpu_parity.py: every parity and parity_xl network on CUDA through each backend (triton,
#                torch, reference) in float32 with TF32 off (max |Δ| <= 1e-4), and training gradients (float32,
#                mixed precision) against float64
#   benchmark    benchmarks/bench_gpu.py: ms / host syncs / peak memory per phase, s/kimg, G img/s at batch 32, per config
#                and backend (default StyleGAN2 and StyleGAN3-T at 256², --cbase 16384 --batch 32)
#   training     a short `stylegan train` run (StyleGAN3-T, 256², batch 32, cbase 16384) on random images: the log's
#                first line names the backend; its log.txt and stats.jsonl (sec/kimg, peak GPU memory) are appended
#   kernels      tests/ops/test_triton_kernels.py compiled on the GPU (STYLEGAN_TEST_DEVICE=cuda, no interpreter):
#                every kernel against the float64 reference, forward / backward / double backward
# Knobs: PYTHON (default .venv/bin/python if present, else python3), BENCH_ARGS (extra bench_gpu.py arguments, e.g.
# "--configs stylegan2,stylegan3-t,stylegan3-r"), SKIP (space-separated step names), T_<STEP> (seconds, e.g. T_KERNELS=300).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu-check}
DEVICE=${DEVICE:-cuda}
TINY=${TINY:-0}
SKIP=${SKIP:-}
FIXTURES=${FIXTURES:-../shared}
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"
: > "$OUT/summary.txt"
SCRATCH=$(mktemp -d)  # training data and runs: never under $OUT
trap 'rm -rf "$SCRATCH"' EXIT

step() {  # step NAME SECONDS: run the function NAME under a time limit, log it, record status and time
    local name=$1 limit=$2
    if [[ " $SKIP " == *" $name "* ]]; then echo "$name: skipped" | tee -a "$OUT/summary.txt"; return; fi
    local start=$SECONDS
    echo "== $name (limit $limit s)" >> "$OUT/$name.log"
    timeout --kill-after=10 "$limit" bash -c "$(declare -f "$name"); $name" >> "$OUT/$name.log" 2>&1
    local rc=$?
    local note=""
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then note=" (stopped at its $limit s limit)"; fi
    echo "$name: rc=$rc, $((SECONDS - start)) s$note" | tee -a "$OUT/summary.txt"
}

environment() {
    if command -v nvidia-smi > /dev/null; then nvidia-smi; fi
    "$PYTHON" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
    "$PYTHON" -c "import triton; print('triton', triton.__version__)" || true
    "$PYTHON" -m stylegan info --backends
    "$PYTHON" -m stylegan info --backends --json
}

parity() {
    local backends=triton,torch,reference args=()
    if [ "$DEVICE" = cpu ]; then backends=torch,reference; fi
    if [ "$TINY" = 1 ]; then args=(--networks sg2_32,xl_g16_cond --no-gradients); fi
    "$PYTHON" benchmarks/gpu_parity.py --device "$DEVICE" --backends "$backends" --fixtures "$FIXTURES" "${args[@]}" \
        --json "$OUT/parity.json"
}

benchmark() {
    local args=(--configs stylegan2,stylegan3-t --iters 8 --reps 3 --timeout 100)  # 4 runs of at most 100 s; 220 s in all
    if [ "$TINY" = 1 ]; then args=(--tiny --configs stylegan2 --backends torch --timeout 300); fi
    # shellcheck disable=SC2086
    "$PYTHON" benchmarks/bench_gpu.py --device "$DEVICE" "${args[@]}" ${BENCH_ARGS:-} --json "$OUT/bench_gpu.json"
}

training() {
    local res=256 kimg=0.64 tick=0.32 flags=(--cfg stylegan3-t --batch 32 --cbase 16384 --gamma 2)
    if [ "$TINY" = 1 ]; then res=16; kimg=0.008; tick=0.004; flags=(--cfg stylegan3-t --batch 2 --cbase 256 --cmax 16 --gamma 2 --mbstd-group 2); fi
    local data="$SCRATCH/train-data" runs="$SCRATCH/train-runs"
    "$PYTHON" -c "import sys; sys.path.insert(0, 'benchmarks'); from bench_training import random_dataset; from pathlib import Path; random_dataset(Path('$data'), $res, 3, n=64)"
    "$PYTHON" -m stylegan train --data "$data" --outdir "$runs" --device "$DEVICE" --aug noaug --metrics none --workers 2 \
        --kimg "$kimg" --tick "$tick" --snap 1000 --no-progress "${flags[@]}"
    local rc=$? run
    run=$(ls -d "$runs"/*/ | head -n 1)
    echo "== $run/log.txt"; cat "$run/log.txt"
    echo "== $run/stats.jsonl"; cat "$run/stats.jsonl"
    return $rc
}

kernels() {
    if [ "$DEVICE" = cpu ]; then  # the interpreter (as in CI); TINY keeps to a few cases
        local pick=()
        if [ "$TINY" = 1 ]; then pick=(-k "test_bias_act or sg2-0 or general-0"); fi
        TRITON_INTERPRET=1 "$PYTHON" -m pytest -v -p no:cacheprovider tests/ops/test_triton_kernels.py -m "not slow" "${pick[@]}"
    else
        STYLEGAN_TEST_DEVICE=cuda TRITON_INTERPRET=0 "$PYTHON" -m pytest -v -p no:cacheprovider tests/ops/test_triton_kernels.py
    fi
}

limit() {  # limit DEFAULT: a step's seconds on a GPU (the defaults sum to 575 s); a CPU smoke test gets 600 each
    if [ "$TINY" = 1 ]; then echo 600; else echo "$1"; fi
}

export OUT DEVICE TINY FIXTURES PYTHON SCRATCH BENCH_ARGS
step environment "${T_ENVIRONMENT:-$(limit 45)}"
step parity "${T_PARITY:-$(limit 140)}"
step benchmark "${T_BENCHMARK:-$(limit 220)}"
step training "${T_TRAINING:-$(limit 90)}"
step kernels "${T_KERNELS:-$(limit 80)}"
echo "summary in $OUT/summary.txt"
