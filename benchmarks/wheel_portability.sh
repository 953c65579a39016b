#!/usr/bin/env bash
# Portability check (slow, not in the suite): build rnnkit's wheel, install it into a fresh venv
# outside the repo, and run tests/kernels and tests/layers there against the installed package.
# Usage: bash benchmarks/wheel_portability.sh [PYTHON]   (PYTHON: one with torch and setuptools,
# default .venv/bin/python). Prints the timings and the test summary.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-$repo/.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t0=$(date +%s)
# against the torch already installed: an isolated build would fetch a multi-GB torch
"$py" -m pip wheel -q --no-build-isolation --no-deps -w "$work/dist" "$repo"
t1=$(date +%s)
python3 -m venv "$work/venv"
whl=$(ls "$work"/dist/rnnkit-*.whl)
# bench: onnx + onnxruntime, which tests/layers' export checks import
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check \
  'torch>=2.4,<2.14' 'pytest>=8' "$whl[bench]"
t2=$(date +%s)
cp -r "$repo/tests" "$work/tests"
cd "$work"
"$work/venv/bin/python" - <<'PY'
import rnnkit.kernels as k
s = k.available()
print("installed:", k.__file__)
print("kernels:", s.build, "|", s.reason)
assert s.build == "extension" and "/site-packages/" in k.__file__, s
PY
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider -c /dev/null --rootdir "$work" \
  -o pythonpath=tests tests/kernels tests/layers | tail -3
t3=$(date +%s)
echo "wheel $(ls "$work/dist")"
echo "build the wheel: $((t1 - t0)) s; fresh venv + install: $((t2 - t1)) s; tests: $((t3 - t2)) s"
