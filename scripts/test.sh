#!/usr/bin/env bash
# Run the test suite the way CI does: one thread per process, in ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg
exec .venv/bin/python -m pytest -q "$@"
