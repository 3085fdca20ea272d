#!/usr/bin/env bash
# Fetches the aarch64 IREE runtime tools (iree-run-module, iree-benchmark-module, ...) so that arm64 modules can
# be run here under qemu-aarch64-static, exactly as they would run on a phone or an ARM64 board.
#
# Source: the official `iree-base-runtime` wheel for manylinux_2_28_aarch64 (same version as the compiler, so the
# module format matches). Unpacked into .cache/aarch64/ (git-ignored). Idempotent: a second run only checks a
# stamp file and returns at once.
#
# Result: .cache/aarch64/iree/_runtime_libs/iree-run-module (an aarch64 ELF linked against glibc; run it with
#   qemu-aarch64-static -L /usr/aarch64-linux-gnu .cache/aarch64/iree/_runtime_libs/iree-run-module ...)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

version=${IREE_RUNTIME_VERSION:-3.13.0}
cache=.cache
dest=$cache/aarch64
stamp=$dest/.stamp
tools=(iree-run-module iree-benchmark-module iree-dump-module)

log() { printf '[setup-aarch64] %s\n' "$*" >&2; }

if [[ -f $stamp && $(cat "$stamp") == "$version" && -x $dest/iree/_runtime_libs/iree-run-module ]]; then
  log "aarch64 IREE runtime $version already in $dest"
  exit 0
fi

py=.venv/bin/python
[[ -x $py ]] || py=python3
mkdir -p "$cache/wheels"

wheel=$(ls "$cache"/wheels/iree_base_runtime-"$version"-*manylinux*aarch64*.whl 2>/dev/null | head -n1 || true)
if [[ -z $wheel ]]; then
  log "downloading iree-base-runtime==$version for manylinux_2_28_aarch64"
  # --python-version matches the venv so pip picks a wheel that exists; the tools inside are the same for all.
  pyver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
  "$py" -m pip download -q --disable-pip-version-check --no-cache-dir --no-deps --only-binary=:all: \
    --platform manylinux_2_28_aarch64 --python-version "$pyver" \
    -d "$cache/wheels" "iree-base-runtime==$version" 2>&1 | grep -v 'is ignored' >&2 || true
  wheel=$(ls "$cache"/wheels/iree_base_runtime-"$version"-*manylinux*aarch64*.whl 2>/dev/null | head -n1 || true)
  if [[ -z $wheel ]]; then
    # Not fatal for the rest of the set-up: arm64 targets then report themselves unavailable (`spattern targets`)
    # and their tests skip with this reason (under CI they fail).
    log "WARNING: could not download iree-base-runtime==$version for aarch64 (no network or no such wheel);"
    log "         arm64 modules cannot run here until this script succeeds."
    exit 0
  fi
fi

log "unpacking the runtime tools from $(basename "$wheel") into $dest"
tmp=$(mktemp -d "$cache/.aarch64.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
members=()
for t in "${tools[@]}"; do members+=("iree/_runtime_libs/$t"); done
"$py" - "$wheel" "$tmp" "${members[@]}" <<'EOF'
import os, sys, zipfile
wheel, out, *members = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    for m in members:
        if m not in names:
            sys.exit(f"{m} is not in {wheel}")
        z.extract(m, out)
        os.chmod(os.path.join(out, m), 0o755)
EOF
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "$version" > "$stamp"

if command -v file >/dev/null; then
  log "$(file -b "$dest/iree/_runtime_libs/iree-run-module" | cut -c1-80)"
fi
if ! command -v qemu-aarch64-static >/dev/null || [[ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]]; then
  log "NOTE: to run these here, install the Debian packages qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross"
fi
log "done"
