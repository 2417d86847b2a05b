#!/usr/bin/env bash
# GPU check in one go, under 5 minutes on an H100/H200: the GPU tests, then the step benchmark, then a table.
# Installs nothing: it uses the machine's python3 and its torch. From the repository root:
#   bash benchmarks/gpu_check.sh        (logs and bench.json go to ${OUT:-/tmp/wgangp-gpu-check})
# Knobs (environment): REPS (3), ITERS (10), TEST_TIMEOUT (150 s), BENCH_TIMEOUT (180 s), PYTHON (python3).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/wgangp-gpu-check}"
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
"$py" -c "import torch; print('torch', torch.__version__, '| CUDA', torch.version.cuda, '|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO CUDA: GPU tests will skip')"

echo "== GPU tests (pytest -m gpu)"
timeout "${TEST_TIMEOUT:-150}" "$py" -m pytest -q -m gpu -p no:cacheprovider tests >"$out/gpu_tests.log" 2>&1
tests_rc=$?
tail -15 "$out/gpu_tests.log"

echo "== step benchmark (ms per generator iteration; median of interleaved repetitions)"
timeout "${BENCH_TIMEOUT:-180}" "$py" benchmarks/step_speed.py --reps "${REPS:-3}" --iters "${ITERS:-10}" \
    --json "$out/bench.json" >"$out/bench.log" 2>&1
bench_rc=$?
sed -n '/^# /,$p' "$out/bench.log" | grep . || tail -20 "$out/bench.log"

echo "== gpu tests rc=$tests_rc, benchmark rc=$bench_rc; targets: toy <= 2.5, dcgan <= 6, resnet <= 20 ms/iter"
exit $(( tests_rc != 0 || bench_rc != 0 ))
