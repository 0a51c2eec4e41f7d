#!/usr/bin/env bash
# Runs the Python interoperability test (tests/interop/test_interop.py) against the built `yrd`
# binary; .ci/run runs it after the suite, and so can anyone (README §"Contract checks"):
#
#   cargo build -p yrd-gateway --bin yrd && tests/interop/run.sh [pytest arguments]
#
# The pinned packages of tests/interop/requirements.txt are installed from PyPI into a virtual
# environment of its own, target/ci-venv (or $YRD_INTEROP_VENV), made when missing or when the
# requirements changed. YRD_BIN names another binary than target/debug/yrd.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV="${YRD_INTEROP_VENV:-target/ci-venv}"
REQUIREMENTS=tests/interop/requirements.txt
PYTHON="${PYTHON:-python3}"

# The requirements the environment was made from, to remake it when they change.
stamp="$VENV/.requirements"
if ! [ -x "$VENV/bin/python" ] || ! cmp -s "$REQUIREMENTS" "$stamp"; then
  echo "interop: making the virtual environment $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$stamp"
fi

export YRD_BIN="${YRD_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/debug/yrd}"
# No __pycache__ in the source tree.
export PYTHONDONTWRITEBYTECODE=1
# -p no:cacheprovider: no .pytest_cache in the source tree.
exec "$VENV/bin/python" -m pytest -p no:cacheprovider -q tests/interop "$@"
