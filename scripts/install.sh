#!/usr/bin/env bash
# Set up ./.venv with the project, its test extra and the CPU build of PyTorch.
#
#   bash scripts/install.sh            # PYTHON=python3.11 bash scripts/install.sh to choose the interpreter
#
# torch comes first so that pip never resolves the project's `torch` requirement to a multi-GB CUDA build:
# a CPU wheel of torch 2.13.0 on local disk when there is one (this workplace's machines), else PyTorch's CPU index,
# added as an extra index so that the user's own pip configuration (a mirror, a proxy) still serves everything else.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${PIP[@]}" install --no-index --no-deps torch==2.13.0 2>/dev/null \
    || "${PIP[@]}" install torch==2.13.0 --extra-index-url https://download.pytorch.org/whl/cpu
fi
"${PIP[@]}" install -e ".[test]"
.venv/bin/python -c "import torch, dm_envs, agents, analysis; print('installed: torch', torch.__version__)"
