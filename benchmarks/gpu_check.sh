#!/usr/bin/env bash
# The GPU check of issue 13, as one command; everything it measures lands in $OUT (default out/gpu-check).
#
#   OUT=/some/dir benchmarks/gpu_check.sh                # on a CUDA machine (about 10-12 min on an H200)
#   OUT=/tmp/x TINY=1 DEVICE=cpu benchmarks/gpu_check.sh  # smoke test of the script itself on a CPU
#
# Steps (each logs to $OUT/<step>.log; a failing step is recorded and the next one still runs):
#   1 environment   nvidia-smi, torch / triton versions, `stylegan info --backends`
#   2 kernels       tests/ops/test_triton_kernels.py compiled on the GPU (STYLEGAN_TEST_DEVICE=cuda, no
#                   interpreter): every kernel against the float64 reference, forward/backward/double backward
#   3 parity        benchmarks/gpu_parity.py: every ../shared/parity network on CUDA through each backend in float32
#                   with TF32 off (max |Δ| <= 1e-4), and training gradients (float32, mixed) against float64
#   4 benchmark     benchmarks/bench_gpu.py: ms/syncs/peak memory per phase, s/kimg, G img/s, per config and backend
#   5 training      a short `stylegan train` run (StyleGAN3-T, 256², batch 32, cbase 16384) on random images:
#                   the log's first line names the backend, stats.jsonl has sec/kimg and peak GPU memory
# Environment knobs: PYTHON (default: .venv/bin/python if present, else python), BENCH_ARGS (extra bench_gpu.py
# arguments, e.g. "--configs stylegan2,stylegan3-t"), PARITY (fixture folder), SKIP (space-separated step names).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu-check}
DEVICE=${DEVICE:-cuda}
TINY=${TINY:-0}
SKIP=${SKIP:-}
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
: > "$OUT/summary.txt"

step() {  # step NAME COMMAND...: run, log, record status and time
    local name=$1; shift
    if [[ " $SKIP " == *" $name "* ]]; then echo "$name: skipped" | tee -a "$OUT/summary.txt"; return; fi
    local start=$SECONDS
    echo "== $name: $*" | tee -a "$OUT/$name.log"
    "$@" >> "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name: rc=$rc, $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
}

environment() {
    if command -v nvidia-smi > /dev/null; then nvidia-smi; fi
    "$PYTHON" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
    "$PYTHON" -c "import triton; print('triton', triton.__version__)" || true
    "$PYTHON" -m stylegan info --backends
    "$PYTHON" -m stylegan info --backends --json > "$OUT/backends.json"
}

kernels() {
    if [ "$DEVICE" = cpu ]; then  # the interpreter (as in CI); TINY keeps to a few cases
        local pick=()
        if [ "$TINY" = 1 ]; then pick=(-k "test_bias_act or sg2-0 or general-0"); fi
        TRITON_INTERPRET=1 "$PYTHON" -m pytest -q -p no:cacheprovider tests/ops/test_triton_kernels.py -m "not slow" \
            "${pick[@]}" --junitxml "$OUT/kernels.xml"
    else
        STYLEGAN_TEST_DEVICE=cuda TRITON_INTERPRET=0 "$PYTHON" -m pytest -q -p no:cacheprovider \
            tests/ops/test_triton_kernels.py --junitxml "$OUT/kernels.xml"
    fi
}

parity() {
    local backends=triton,torch,reference
    if [ "$DEVICE" = cpu ]; then backends=torch,reference; fi
    "$PYTHON" benchmarks/gpu_parity.py --device "$DEVICE" --backends "$backends" ${PARITY:+--parity "$PARITY"} \
        --json "$OUT/parity.json"
}

benchmark() {
    local args=()
    if [ "$TINY" = 1 ]; then args+=(--tiny --backends torch); fi
    # shellcheck disable=SC2086
    "$PYTHON" benchmarks/bench_gpu.py --device "$DEVICE" "${args[@]}" ${BENCH_ARGS:-} --json "$OUT/bench_gpu.json"
}

training() {
    local res=256 kimg=0.64 tick=0.32 flags=(--cfg stylegan3-t --batch 32 --cbase 16384 --gamma 2)
    if [ "$TINY" = 1 ]; then res=16; kimg=0.008; tick=0.004; flags=(--cfg stylegan3-t --batch 2 --cbase 256 --cmax 16 --gamma 2 --mbstd-group 2); fi
    local data="$OUT/train-data" runs="$OUT/train-runs"
    rm -rf "$data" "$runs"
    "$PYTHON" -c "import sys; sys.path.insert(0, 'benchmarks'); from bench_training import random_dataset; from pathlib import Path; random_dataset(Path('$data'), $res, 3, n=64)"
    "$PYTHON" -m stylegan train --data "$data" --outdir "$runs" --gpus 1 --aug noaug --metrics none --workers 2 \
        --kimg "$kimg" --tick "$tick" --snap 1000 --no-progress "${flags[@]}" || return 1
    local run
    run=$(ls -d "$runs"/*/ | head -n 1)
    cp "$run/log.txt" "$OUT/train-log.txt"
    cp "$run/stats.jsonl" "$OUT/train-stats.jsonl"
    rm -rf "$data" "$runs"
}

step environment environment
step kernels kernels
step parity parity
step benchmark benchmark
step training training
echo "summary in $OUT/summary.txt"
cat "$OUT/summary.txt"
