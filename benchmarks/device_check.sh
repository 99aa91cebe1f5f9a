#!/usr/bin/env bash
# The published numbers checked on another machine (issue 31), and the default run on its GPU when it has one.
# Run from the checkout's root; nothing is installed (PYTHONPATH=.), so the machine's own jax, flax, optax, numpy,
# scipy and matplotlib are used, whatever their versions: that is the point of the check.
#
#     benchmarks/device_check.sh OUT
#
# OUT gets machine.txt (versions, devices, CPU), cpu-check-NAME.txt (`compmech reproduce --check --quick --only NAME`
# on the CPU, JAX_PLATFORMS=cpu), and on a machine with a GPU gpu-check-NAME.txt (the same on the GPU) and
# gpu-run.txt (the full default run, `compmech run mess3`, checked with `compmech check`), plus each run's
# summary.json and the check tables. Each step has its own time limit (CPU_NAMES, CPU_S, GPU_NAMES, GPU_S, RUN_S, DEADLINE below; override them
# from the environment) so that the whole fits one call of a lent machine.
set -uo pipefail
out=${1:?usage: benchmarks/device_check.sh OUT}
mkdir -p "$out"
export PYTHONPATH=$PWD MPLBACKEND=Agg
py=${PYTHON:-python3}
runs=${RUNS:-/tmp/compmech-device-runs}
cpu_names=${CPU_NAMES:-z1r post_quantum mess3}
deadline=${DEADLINE:-540}  # seconds from the start: a step gets what is left, and none starts with under 20 s
step() {  # step NAME SECONDS COMMAND...: run it with a time limit, its output and wall time into OUT/NAME.txt
    local name=$1 limit=$2; shift 2
    local left=$((deadline - SECONDS))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 20 ]; then echo "== $name skipped: ${left} s left of the deadline" | tee "$out/$name.txt"; return; fi
    local t0=$SECONDS
    timeout "$limit" "$@" > "$out/$name.txt" 2>&1
    local rc=$?
    echo "== rc=$rc wall_s=$((SECONDS - t0)) limit_s=$limit: $*" >> "$out/$name.txt"
    tail -1 "$out/$name.txt"
}
{
    $py -c 'import sys, jax, flax, optax, numpy, scipy, matplotlib
print("python", sys.version.split()[0], "jax", jax.__version__, "flax", flax.__version__, "optax", optax.__version__,
      "numpy", numpy.__version__, "scipy", scipy.__version__)
print("devices", jax.devices(), "cpu", jax.devices("cpu")[:1])'
    lscpu | grep -E "^Model name|^CPU\(s\)|^Flags" | cut -c1-300
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt"
# one experiment a step, so that a step cut by its limit loses only its own numbers
for name in $cpu_names; do
    JAX_PLATFORMS=cpu step "cpu-check-$name" "${CPU_S:-150}" $py -m compmech.runs.cli reproduce --check --quick \
        --only "$name" --out "$runs/cpu-quick" --no-progress
done
if $py -c 'import jax, sys; sys.exit(jax.default_backend() != "gpu")' 2> /dev/null; then
    for name in ${GPU_NAMES:-z1r post_quantum mess3 rrxor}; do
        step "gpu-check-$name" "${GPU_S:-90}" $py -m compmech.runs.cli reproduce --check --quick --only "$name" \
            --out "$runs/gpu-quick" --no-progress
    done
    step gpu-run "${RUN_S:-170}" bash -c "$py -m compmech.runs.cli run mess3 --out $runs/gpu-mess3 --no-progress \
        && $py -m compmech.runs.cli check $runs/gpu-mess3"
fi
# the small records only (no activations or figures)
(cd "$runs" 2> /dev/null && find . \( -name summary.json -o -name "*.md" -o -name probe.json \) -size -2M \
    -exec cp --parents {} "$out/" \;)
ls -R "$out" | head -50
