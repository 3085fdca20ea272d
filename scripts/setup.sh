#!/usr/bin/env bash
# Sets up a fresh machine for spattern, idempotently (a second run takes seconds):
#   1. Debian packages: clang + cmake (pattern microkernels), lld, mesa-vulkan-drivers (lavapipe, a Vulkan driver
#      on the CPU), qemu-user-static + arm64 cross libc/libstdc++ (run aarch64 iree-run-module here),
#      llvm-19 (llvm-mca: the modelled ARM speed of bench/arm_model.py);
#   2. a virtual environment at .venv with torch 2.13.0 CPU installed first and on its own (a looser pin pulls
#      gigabytes of CUDA), then the package and its test extras;
#   3. the aarch64 IREE runtime (iree-run-module for arm64, run under qemu) into .cache/aarch64;
#   4. the pattern microkernels, built by CMake into spattern/_kernels/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf '[setup] %s\n' "$*" >&2; }

# 1. Debian packages ------------------------------------------------------------------------------------------
# llvm-19: llvm-mca with a Neoverse-N1 (Cortex-A76-class) model for bench/arm_model.py; Debian 12's default llvm
# (14) models neoverse-n1 and cortex-a76 as a Cortex-A57.
apt_packages=(clang lld cmake mesa-vulkan-drivers libvulkan1 vulkan-tools qemu-user-static libc6-arm64-cross
              libstdc++6-arm64-cross llvm-19)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "WARNING: missing Debian packages (${missing[*]}); install them with apt-get as root."
    log "         Without them the microkernels, ARM64 and Vulkan targets are unavailable."
  fi
fi

# 2. Python environment -------------------------------------------------------------------------------------
py=${PYTHON:-python3.11}
command -v "$py" >/dev/null || py=python3
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv with $py"
  "$py" -m venv .venv
fi
stamp=.venv/.spattern-setup-stamp
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
# pip's wheel cache would double the install's disk use (torch, IREE and torch-mlir are ~1.5 GB unpacked), and
# a full disk must stop the set-up with a message, not with an import error three steps later.
pip_install() {
  local status
  set +e
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-cache-dir "$@" 2>&1 | grep -v 'is ignored'
  status=${PIPESTATUS[0]}
  set -e
  if ((status != 0)); then
    local free
    free=$(df -h --output=avail . | tail -n1 | tr -d ' ')
    log "ERROR: 'pip install $*' failed (exit $status). Free disk space here: $free."
    log "       Fix the cause printed above (a full disk needs ~2.5 GB free) and run scripts/setup.sh again."
    exit "$status"
  fi
}
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  log "installing torch 2.13.0 (CPU) first, on its own"
  pip_install "torch==2.13.0"
  .venv/bin/python -c 'import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith("2.13.0") and "cu" not in v.split("+")[-1] else f"torch {v} is not the 2.13.0 CPU build")'
  log "installing spattern and its test dependencies"
  pip_install -e '.[test]'
  .venv/bin/python -c 'import spattern, torch_mlir, iree.compiler, iree.runtime, lit, pytest' 
  echo "$want" > "$stamp"
else
  log "python environment up to date"
fi

# 3. aarch64 IREE runtime -------------------------------------------------------------------------------------
if [[ -f scripts/setup_aarch64_runtime.sh ]]; then
  bash scripts/setup_aarch64_runtime.sh
fi

# 4. Pattern microkernels -----------------------------------------------------------------------------------
if [[ -f CMakeLists.txt ]] && command -v cmake >/dev/null && command -v clang >/dev/null; then
  .venv/bin/python -m spattern.microkernels.build_kernels --quiet
fi
log "done"
