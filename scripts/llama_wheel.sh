#!/usr/bin/env bash
# Build llama-cpp-python once per machine and keep the wheel, so later installs take seconds, not ~8 minutes.
# The wheel is compiled for this CPU (llama.cpp's native build), so the cache folder is keyed by the CPU's flags.
# Usage: scripts/llama_wheel.sh PYTHON VERSION  -> prints the folder holding the wheel.
set -euo pipefail
python=${1:?python}
version=${2:?version}
home=${SELFIMPROVE_HOME:-$HOME/.selfimprove}
cpu=$( (grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m) | sha256sum | cut -c1-12)
dir="$home/wheels/$(uname -m)-$cpu"
mkdir -p "$dir"
if ! ls "$dir"/llama_cpp_python-"$version"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $version from source (about 4-8 minutes, once per machine) into $dir" >&2
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    "$python" -m pip wheel --no-deps "llama-cpp-python==$version" -w "$dir.partial" >&2
  mv "$dir.partial"/llama_cpp_python-"$version"-*.whl "$dir"/
  rmdir "$dir.partial" 2>/dev/null || true
fi
echo "$dir"
