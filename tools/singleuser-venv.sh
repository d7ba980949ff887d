#!/usr/bin/env bash
# A world-readable Python environment with jupyterhub-singleuser + JupyterLab + terminals,
# for the end-to-end tests (tests/e2e/).
#
# The test kubelet (tests/fixtures/kubelet.py) ignores images and runs the notebook
# container's command on this host as the user's uid (e.g. 2001). The development
# environments live under /root (mode 0700), which that uid cannot read, so the notebook
# server needs an environment of its own outside /root, readable by everyone: this venv plays
# the notebook image.
#
#   bash tools/singleuser-venv.sh             # create or reuse (idempotent; cached)
#   bash tools/singleuser-venv.sh --print-dir # where it is (or would be)
#
# Location: ${NBSPAWNER_SINGLEUSER_VENV:-/opt/nbspawner-test/singleuser-venv}.
# Python: Debian's /usr/bin/python3 (apt python3-venv is installed when missing).
# jupyterhub stays on 5.x, like the pinned hub; jupyterhub-singleuser only talks the hub's
# REST API, so it works with the newest hub too.
set -euo pipefail

VENV="${NBSPAWNER_SINGLEUSER_VENV:-/opt/nbspawner-test/singleuser-venv}"
PY="${NBSPAWNER_SINGLEUSER_PYTHON:-/usr/bin/python3}"
PACKAGES=("jupyterhub>=5.5,<6" "jupyterlab>=4.2,<5" "terminado>=0.18" "jupyter-server-terminals>=0.5")
# a venv built for another package list is rebuilt
STAMP_VALUE="v1 ${PACKAGES[*]}"

if [ "${1:-}" = "--print-dir" ]; then
  echo "$VENV"
  exit 0
fi

# JupyterLab defaults of this "image", rewritten on every run (what an image's
# share/jupyter/lab/settings/overrides.json does):
# - no news/update pop-up asking to call home (it would cover the tests' screenshots);
# - terminals in screen reader mode: xterm.js then keeps the visible rows as text in the DOM
#   (.xterm-accessibility-tree), which is what the tests read; the picture is unchanged.
write_lab_overrides() {
  mkdir -p "$VENV/share/jupyter/lab/settings"
  cat > "$VENV/share/jupyter/lab/settings/overrides.json" <<'JSON'
{
  "@jupyterlab/apputils-extension:notification": {
    "fetchNews": "false",
    "checkForUpdates": false
  },
  "@jupyterlab/terminal-extension:plugin": {
    "screenReaderMode": true
  }
}
JSON
  chmod -R a+rX "$VENV/share/jupyter/lab/settings"
}

STAMP="$VENV/.nbspawner-singleuser-stamp"
if [ -x "$VENV/bin/jupyterhub-singleuser" ] && [ -f "$STAMP" ] \
  && [ "$(cat "$STAMP")" = "$STAMP_VALUE" ]; then
  write_lab_overrides
  echo "singleuser venv up to date: $VENV"
  exit 0
fi

if [ ! -x "$PY" ]; then
  echo "$PY not found: install Debian's python3 (apt-get install python3 python3-venv)" >&2
  exit 2
fi
if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "python3-venv is missing and installing it needs root: apt-get install python3-venv" >&2
    exit 2
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi

rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
# every directory from / down to the venv must be traversable by other uids
d="$(dirname "$VENV")"
while [ "$d" != "/" ]; do
  chmod o+rx "$d"
  d="$(dirname "$d")"
done
(
  umask 022
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q --no-cache-dir "${PACKAGES[@]}"
)
write_lab_overrides
chmod -R a+rX "$VENV"
"$VENV/bin/python" -c 'import jupyterhub, jupyterlab, terminado, jupyter_server_terminals; print("singleuser venv:", "jupyterhub", jupyterhub.__version__, "jupyterlab", jupyterlab.__version__)'
echo "$STAMP_VALUE" > "$STAMP"
chmod a+r "$STAMP"
echo "singleuser venv ready: $VENV"
