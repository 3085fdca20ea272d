#!/usr/bin/env bash
# Sets the machine up (idempotent) and runs the main job end to end on the built-in example.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
exec .venv/bin/spattern demo "$@"
