#!/usr/bin/env bash
# akdqff-bench: one command to set up, build data, run the benchmark grid and print the comparison.
#
#   ./run_all.sh                 quick profile (CPU, ~30 min): results/quick/{metrics.csv,compare.html,...}
#   ./run_all.sh full            full profile (GPU; the papers' settings)
#   ./run_all.sh quick --force   rerun runs that already finished (default: resume, skip them)
#   ./run_all.sh test            the test suite (what CI runs)
#   ./run_all.sh setup           only create/update the environment (.venv)
#
# Interrupting loses nothing that finished: each run writes its record when it ends, and the next
# ./run_all.sh skips finished runs.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PYTHON_BIN=${PYTHON_BIN:-python3.11}
STAMP="$VENV/.installed-from-pyproject"

ensure_env() {
    local wanted
    wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$wanted" ]]; then
        return
    fi
    echo "== setting up $VENV (pinned versions from pyproject.toml; a few minutes the first time)"
    # torch from PyPI brings ~4 GB of CUDA libraries (a CPU-only torch is no way out: torchvision's
    # only Linux wheel links torch's CUDA libraries). Measured 2026-11-24 with wheels from a local
    # mirror: .venv is 8.3 GB, and the install peaked at 9.3 GB; downloads from PyPI add their
    # temporary copies. CI failed twice for want of disk (old clones, each with its own .venv, had
    # filled it): warn up front.
    local free_kb
    free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
    if (( free_kb < 10 * 1024 * 1024 )); then
        echo "warning: only $((free_kb / 1024)) MB free on this disk; setting up $VENV needs about 10 GB" >&2
    fi
    # No wheel cache: it would keep a second copy of every download.
    export PIP_NO_CACHE_DIR=${PIP_NO_CACHE_DIR:-1}
    [[ -x "$VENV/bin/python" ]] || "$PYTHON_BIN" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    # torch first, so nerfstudio's resolver keeps the pinned build.
    local torch_pins
    torch_pins=$(grep -oE '"(torch|torchvision)==[^"]+"' pyproject.toml | tr -d '"')
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet $torch_pins
    # The `data` extra (Blender, ~1.4 GB) waits for ensure_data: only needed to make data.
    "$VENV/bin/pip" install --quiet -e ".[test]"
    echo "$wanted" > "$STAMP"
}

ensure_data() {
    local variant=$1
    if [[ ! -f "data/synthetic-bed/$variant/transforms_test.json" ]]; then
        echo "== generating synthetic-bed ($variant) with Blender"
        "$VENV/bin/pip" install --quiet -e ".[data]"
        "$VENV/bin/akdqff-bench" data --variant "$variant"
    fi
}

command=${1:-quick}
case "$command" in
    setup)
        ensure_env
        ;;
    test)
        shift || true
        ensure_env
        # Tests are CPU-only by design; one thread per process keeps them steady on 2 cores.
        OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$VENV/bin/python" -m pytest "$@"
        ;;
    quick|full|smoke)
        shift || true
        ensure_env
        variant=$("$VENV/bin/python" -c "from akdqff_bench.profiles import get_profile; print(get_profile('$command').synthetic_bed_variant)")
        ensure_data "$variant"
        "$VENV/bin/akdqff-bench" grid --profile "$command" "$@"
        ;;
    *)
        echo "unknown command '$command'; use: quick | full | smoke | test | setup" >&2
        exit 2
        ;;
esac
