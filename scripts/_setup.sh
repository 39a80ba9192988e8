# Sourced by scripts/serve and scripts/test: make .venv and install the project into it.
# Idempotent and quick once done: it reinstalls only when pyproject.toml, constraints.txt or the
# llama.cpp backend (scripts/_backend.sh: cpu, cuda, metal, vulkan) changed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.hearth-installed"
source "$root/scripts/_backend.sh"
hearth_backend
want="$(cat "$root/pyproject.toml" "$root/constraints.txt" | sha256sum | cut -d' ' -f1) $backend"

if [ ! -x "$venv/bin/python" ]; then
  echo "hearth: creating $venv" >&2
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "hearth: installing dependencies (the first time this compiles llama.cpp: about 6 minutes on 2 cores)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --progress-bar on -c "$root/constraints.txt" -e "$root[test]"  # one install for serving, tests, conformance, generate and bench
  previous=$(cut -s -d' ' -f2 "$stamp" 2>/dev/null || true)  # the backend installed before, if any
  if [ "$backend" != cpu ] || { [ -n "$previous" ] && [ "$previous" != cpu ]; }; then
    # pip's wheel cache does not know CMAKE_ARGS: a GPU build bypasses it (and never enters it), so going
    # back to the CPU takes the cached CPU wheel again. CUDA compiles kernels for every GPU architecture:
    # far longer than the CPU's ~6 minutes on 2 cores.
    cache=(); [ "$backend" = cpu ] || cache=(--no-cache-dir)
    echo "hearth: compiling llama-cpp-python for the $backend backend" >&2
    CMAKE_ARGS="$cmake_args" "$venv/bin/python" -m pip install --progress-bar on --no-deps --force-reinstall \
      "${cache[@]}" "$(grep -i '^llama_cpp_python==' "$root/constraints.txt")"
  fi
  echo "$want" > "$stamp"
fi
