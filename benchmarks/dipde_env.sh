#!/usr/bin/env bash
# A Python that runs dipde 0.2.2, for timing it beside the engine in benchmarks/run.py.
#   bash benchmarks/dipde_env.sh DIPDE_SOURCE [VENV]      (VENV default: .dipde-venv)
# DIPDE_SOURCE is a checkout of dipde 0.2.2 (github.com/AllenInstitute/dipde; it is not on
# PyPI, and sweeper neither ships nor imports it). dipde needs the numpy of its time, so it
# gets its own venv; then:  SWEEPER_DIPDE_PYTHON=VENV/bin/python .venv/bin/python benchmarks/run.py
set -euo pipefail
src=$(cd "${1:?usage: dipde_env.sh DIPDE_SOURCE [VENV]}" && pwd)
venv=${2:-.dipde-venv}
test -f "$src/dipde/internals/network.py" || { echo "dipde_env.sh: no dipde package in $src" >&2; exit 2; }
python3 -m venv "$venv"
"$venv/bin/pip" install -q 'numpy==1.23.5' 'scipy==1.11.4' 'sympy==1.12' 'pandas==1.5.3' 'matplotlib==3.7.5'
site=$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
echo "$src" > "$site/dipde.pth"
"$venv/bin/python" -W ignore -c 'import dipde; print("dipde", dipde.__version__, "in", dipde.__file__)'
echo "SWEEPER_DIPDE_PYTHON=$(cd "$venv" && pwd)/bin/python"
