#!/usr/bin/env bash
# Sets the machine up (idempotent) and runs every test: the lit suite (passes, dialect, export) and pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export PATH="$root/.venv/bin:$PATH"
echo "== lit"
.venv/bin/lit lit_tests -q
echo "== pytest"
# Two workers for two cores; pytest's summary line is the last thing printed.
.venv/bin/python -m pytest -n 2 -q -p no:cacheprovider "$@"
