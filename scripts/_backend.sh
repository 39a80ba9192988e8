# Sourced by scripts/_setup.sh: which llama.cpp backend to compile llama-cpp-python with.
# Sets `backend` (cpu | cuda | metal | vulkan) and `cmake_args` (llama-cpp-python's CMAKE_ARGS).
#   HEARTH_BACKEND=cuda|metal|vulkan|cpu   as asked
#   otherwise: metal on Apple silicon (llama.cpp's default there); cuda when nvcc is found AND
#   nvidia-smi lists a GPU (nvcc alone, a toolkit on a machine without a card, builds for nothing);
#   cpu everywhere else.
hearth_backend() {
  backend="${HEARTH_BACKEND:-}"
  if [ -z "$backend" ]; then
    if [ "$(uname -s)" = Darwin ] && [ "$(uname -m)" = arm64 ]; then
      backend=metal
    elif command -v nvcc >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
      backend=cuda
    else
      backend=cpu
    fi
  fi
  case "$backend" in
    cpu) cmake_args="" ;;
    cuda) cmake_args="-DGGML_CUDA=on" ;;
    metal) cmake_args="-DGGML_METAL=on" ;;
    vulkan) cmake_args="-DGGML_VULKAN=on" ;;
    *) echo "hearth: HEARTH_BACKEND=$backend: choose cpu, cuda, metal or vulkan" >&2; return 1 ;;
  esac
}
