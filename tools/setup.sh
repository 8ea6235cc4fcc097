#!/usr/bin/env bash
# Set up lwgan in ./.venv: create it if missing, install the CPU build of torch 2.13.0 when no torch
# is there (plain `pip install torch` would pull gigabytes of CUDA packages), then lwgan itself.
# Usage: bash tools/setup.sh [EXTRAS]      e.g. `bash tools/setup.sh test`
# GPU users: install lwgan into an environment that already has your CUDA torch (`pip install -e .`);
# pyproject.toml accepts a range of torch versions and leaves yours in place.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
extras=${1:-}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($python --version)"
    "$python" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "^WARNING: Location" >&2); }
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    echo "setup: installing torch==2.13.0 (CPU)"
    pip install torch==2.13.0
fi
echo "setup: installing lwgan${extras:+[$extras]}"
pip install -e ".${extras:+[$extras]}"
if [[ ",$extras," == *",test,"* ]] && ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
    # The browser test of `lwgan serve` drives Debian's chromium (Playwright never downloads a browser here).
    as_root=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo -n")
    echo "setup: installing chromium (apt) for the browser test"
    { $as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium; } >/dev/null 2>&1 \
        || echo "setup: could not install chromium with apt-get; the browser test will be skipped" >&2
fi
echo "setup: done ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
