#!/usr/bin/env bash
# akdqff-bench: one command to set up, build data, run the benchmark grid and print the comparison.
#
#   ./run_all.sh                 quick profile (CPU, 12 runs: 6 methods on synthetic-bed and ethiopian-head, one scene of
#                                each kind; about an hour; its measured time: results/quick/README.md): your records in
#                                results/local/quick/ (git-ignored), compare.html there sets them beside the committed study in
#                                results/quick/, each run trained for its reference seeds' median iterations (--reproduce);
#                                each method's own evidence drawn short (--evidence short)
#   ./run_all.sh study           the committed study (quick profile, --study: its 4 scenes, 3 seeds of every run + each
#                                method's capacity points, about 7 hours on 2 cores) into results/quick/; resumes, so run it in parts
#   ./run_all.sh long            the long study (four times the quick budget, synthetic-bed and ethiopian-head, seeds 0
#                                and 1, about 8 hours) into results/long/; resumes likewise
#   ./run_all.sh full            full profile (GPU; the papers' settings), into results/local/full/
#   ./run_all.sh quick --force   rerun runs that already finished (default: resume, skip them)
#   ./run_all.sh full --ray auto the grid on a Ray cluster, one task per run (ADDRESS: auto or HOST:PORT;
#                                installs the `cluster` extra; docs/cluster.md)
#   ./run_all.sh gpu-check       on a machine with a GPU: the CUDA-only tests and a short run of every method, records and
#                                a summary (s/iter, PSNR, peak GPU memory, whether each stored model reloads the same) in
#                                results/gpu-check/ (sized for under 10 min on one GPU, not yet measured on one); without
#                                CUDA it says so and exits 2
#   ./run_all.sh test            the test suite (what CI runs)
#   ./run_all.sh setup           only create/update the environment (.venv)
#
# Interrupting loses nothing that finished: each run writes its record when it ends, and the next
# ./run_all.sh skips finished runs. The console gets one line per run; each run's own output goes to
# <results>/<profile>/logs/<run>.log (git-ignored). The grid prints its expected time before it starts.
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
    # LPIPS's AlexNet weights: fetched here, once, never by a run (offline this says so within seconds).
    "$VENV/bin/python" -m bench_base.lpips || true
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

# Install an optional extra of pyproject.toml unless each of its pins is installed at that version
# (a pin changed in pyproject.toml is caught here too: ensure_env installs only the `test` extra).
ensure_extra() {
    local extra=$1
    if ! "$VENV/bin/python" - "$extra" <<'PY'
import sys
import tomllib
from importlib import metadata

with open("pyproject.toml", "rb") as f:
    pins = tomllib.load(f)["project"]["optional-dependencies"][sys.argv[1]]
for pin in pins:
    name, _, version = pin.partition("==")
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        sys.exit(1)
    if installed != version:
        sys.exit(1)
PY
    then
        echo "== installing the '$extra' extra"
        PIP_NO_CACHE_DIR=${PIP_NO_CACHE_DIR:-1} "$VENV/bin/pip" install --quiet -e ".[$extra]"
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
        # Ray too: the Ray executor's tests start a local cluster and must run in CI, not skip.
        ensure_extra cluster
        # Tests are CPU-only by design; one thread per process keeps them steady on 2 cores.
        OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$VENV/bin/python" -m pytest "$@"
        ;;
    gpu-check)
        shift || true
        ensure_env
        # Refuses in one line, exit 2, where torch sees no CUDA device (before any data is made).
        "$VENV/bin/python" -c "import sys; from akdqff_bench import gpu_check; r = gpu_check.cuda_missing_reason(); r and print(r, file=sys.stderr); sys.exit(2 if r else 0)"
        ensure_data "$("$VENV/bin/python" -c "from akdqff_bench.profiles import get_profile; print(get_profile('gpu-check').synthetic_bed_variant)")"
        "$VENV/bin/python" -m akdqff_bench.gpu_check "$@"
        ;;
    quick|full|smoke|study|long)
        shift || true
        ensure_env
        profile=$command
        grid_args=()
        if [[ "$command" == study ]]; then
            # The committed study: written where the committed results are.
            profile=quick
            grid_args+=(--study)
        elif [[ "$command" == long ]]; then
            # The long study (seeds 0 and 1, four times the quick budget): committed, into results/long/.
            grid_args+=(--study)
        else
            # Your own grid: its own git-ignored folder, compared with the committed study when there is one.
            grid_args+=(--results results/local)
            # The quick grid draws each method's own evidence short (half the learning-curve points, a
            # cheaper version of a method's own figures); --evidence full draws the study's.
            if [[ "$command" == quick ]]; then
                grid_args+=(--evidence short)
            fi
            if compgen -G "results/$profile/runs/*.json" > /dev/null; then
                # Beside the committed study, and as a reproduction of it: each run trains for the
                # iterations its reference seeds made (their median), so on any CPU the quality
                # numbers are comparable and only the timings differ.
                grid_args+=(--reference results --reproduce)
            fi
        fi
        variant=$("$VENV/bin/python" -c "from akdqff_bench.profiles import get_profile; print(get_profile('$profile').synthetic_bed_variant)")
        ensure_data "$variant"
        # --ray ADDRESS: the grid's runs as Ray tasks on that cluster (the driver stays here).
        # Options given here come after the defaults above: --results PATH wins over results/local.
        while (( $# )); do
            case "$1" in
                --ray)
                    [[ $# -ge 2 && "$2" != --* ]] || { echo "--ray needs the cluster's address: auto or HOST:PORT" >&2; exit 2; }
                    grid_args+=(--executor ray --address "$2")
                    shift 2
                    ;;
                --ray=*)
                    grid_args+=(--executor ray --address "${1#--ray=}")
                    shift
                    ;;
                *)
                    grid_args+=("$1")
                    shift
                    ;;
            esac
        done
        if [[ " ${grid_args[*]-} " == *" --executor ray "* ]]; then
            ensure_extra cluster
        fi
        "$VENV/bin/akdqff-bench" grid --profile "$profile" ${grid_args[@]+"${grid_args[@]}"}
        ;;
    *)
        echo "unknown command '$command'; use: quick | study | long | full | smoke | gpu-check | test | setup" >&2
        exit 2
        ;;
esac
