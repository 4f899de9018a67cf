# Sourced by the other scripts: make (once) and activate the project's virtual environment.
# Re-installs when pyproject.toml changes. Override the interpreter with PYTHON=python3.12.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GALDB_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
fi
STAMP="$VENV/.galdb-installed"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[test]"
    touch "$STAMP"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
cd "$ROOT"
