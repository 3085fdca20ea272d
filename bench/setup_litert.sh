#!/usr/bin/env bash
# LiteRT for bench/peers.py, installed beside the main environment rather than into it.
#
# Why a side folder: litert-torch 0.10 (the PyPI successor of ai-edge-torch, which is now a deprecated shim)
# depends on xdsl 0.28, which pins typing-extensions<4.13; a plain `pip install litert-torch` would downgrade
# typing-extensions and pydantic in the main environment. It needs no other torch (it accepts torch>=2.4,<2.15)
# and no CUDA. Installed with --no-deps, only the modules its converter and interpreter import, pinned to the
# versions checked here; bench/peers.py appends this folder to sys.path, so the main environment's packages win.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${SPATTERN_LITERT_DIR:-.cache/bench-litert}"
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m pip install --no-deps --target "$DEST" \
    litert-torch==0.10.0 litert-converter==0.5.0 ai-edge-litert==2.3.0 ai-edge-quantizer==0.10.0 \
    xdsl==0.28.0 torchao==0.18.0 jax==0.10.2 jaxlib==0.10.2 \
    absl-py==2.5.1 backports.strenum==1.2.8 fire==0.7.1 immutabledict==4.3.1 jaxtyping==0.3.11 lark==1.3.1 \
    multipledispatch==1.0.0 opt_einsum==3.4.0 tabulate==0.10.0 termcolor==3.3.0 tqdm==4.70.1 wadler_lindig==0.1.8
"$PY" -c "import torch; print('torch', torch.__version__, '(unchanged)')"
echo "LiteRT installed into $DEST"
