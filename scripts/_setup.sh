# Sourced by scripts/serve and scripts/test: make .venv and install the project into it.
# Idempotent and quick once done: it reinstalls only when pyproject.toml or constraints.txt changed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.hearth-installed"
want=$(cat "$root/pyproject.toml" "$root/constraints.txt" | sha256sum | cut -d' ' -f1)

if [ ! -x "$venv/bin/python" ]; then
  echo "hearth: creating $venv" >&2
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "hearth: installing dependencies (the first time this compiles llama.cpp: about 6 minutes on 2 cores)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --progress-bar on -c "$root/constraints.txt" -e "$root[test]"  # one install for serving, tests, conformance, generate and bench
  echo "$want" > "$stamp"
fi
