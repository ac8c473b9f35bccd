# Shared by scripts/demo and scripts/test: find a Python and build a virtual environment.
# shellcheck shell=bash

die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

# find_python MAJOR.MINOR: a python executable of at least that version, or nothing.
find_python() {
  local want=$1 candidate
  for candidate in "python$want" python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$want'.split('.'))))" 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for candidate in "$(pyenv root)"/versions/"$want"*/bin/python"$want"; do
      [ -x "$candidate" ] && { echo "$candidate"; return 0; }
    done
  fi
  return 1
}

# make_venv DIR PYTHON DJANGO_SPEC EXTRA_ARGS...: create/update a venv with crmsync and its dev tools.
make_venv() {
  local dir=$1 python=$2 django=$3; shift 3
  if [ ! -x "$dir/bin/python" ]; then
    echo "==> creating $dir with $("$python" --version 2>&1)"
    "$python" -m venv "$dir"
  fi
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25.1"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[example]" "$django" "$@"
}
