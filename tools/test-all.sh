#!/usr/bin/env bash
# Install every test prerequisite and run the whole nbspawner test suite with real components.
#
#   ./tools/test-all.sh            # everything, as CI runs it
#   ./tools/test-all.sh -k ldap    # extra arguments go to pytest (both environments)
#
# What it does (idempotent, safe to re-run; later runs reuse caches):
#   1. apt: slapd + ldap-utils (real OpenLDAP), chromium (real browser), busybox, git, ...
#   2. npm: configurable-http-proxy (JupyterHub's real proxy) into tools/node_modules
#   3. Go: builds kube-apiserver + etcd once (tools/build-controlplane.sh; cached) and helm v3
#      (tools/build-helm.sh; cached, passed to the tests as NBSPAWNER_HELM)
#   4. three Python environments:
#        .venv-440     the z2jh 4.4.0 release's hub image (Python 3.12, kubespawner 7.0.0), from
#                      shared/z2jh/hub-image-requirements-4.4.0.txt
#        .venv-pinned  the development chart's hub image (jupyterhub 5.5.0, kubespawner 7.1.0,
#                      ...), from shared/z2jh/hub-image-requirements.txt
#        .venv-latest  the newest releases
#   5. ruff lint + format check, then pytest in both environments. A skipped test fails the run.
# Needs root (apt-get, unshare -m, setpriv) on Debian/Ubuntu, Python >= 3.10, Node/npm and Go.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
cd "$REPO"

Z2JH_DIR="${NBSPAWNER_Z2JH_DIR:-$REPO/../shared/z2jh}"
export NBSPAWNER_Z2JH_DIR="$Z2JH_DIR"
PYTHON="${PYTHON:-python3}"
log() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "tools/test-all.sh needs root: it installs apt packages and the suite uses unshare -m and setpriv." >&2
  exit 2
fi

log "apt packages"
APT_PACKAGES=(slapd ldap-utils chromium busybox git bash dash util-linux mount passwd openssh-client procps ca-certificates python3 python3-venv libsss-idmap0)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  # slapd asks debconf questions; the suite runs its own slapd with its own config
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# the packaged slapd service is not used (fixtures start their own on random ports)
if command -v service >/dev/null && pgrep -x slapd >/dev/null 2>&1; then service slapd stop >/dev/null 2>&1 || true; fi

log "npm: configurable-http-proxy"
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
export PATH="$HERE/node_modules/.bin:$PATH"
configurable-http-proxy --version

log "control plane: kube-apiserver + etcd (first build takes a while, then cached)"
bash "$HERE/build-controlplane.sh"

log "helm v3 (lints and renders the z2jh release chart for the helm-chart tests; cached)"
bash "$HERE/build-helm.sh"
NBSPAWNER_HELM="$(bash "$HERE/build-helm.sh" --print-dir)/helm"
export NBSPAWNER_HELM
"$NBSPAWNER_HELM" version --short

log "notebook environment for the end-to-end tests (plays the notebook image; cached)"
bash "$HERE/singleuser-venv.sh"

# make_venv NAME [pip args...]   (the interpreter is $VENV_PYTHON, default $PYTHON)
make_venv() {
  local venv="$REPO/$1"; shift
  if [ ! -x "$venv/bin/python" ]; then
    "${VENV_PYTHON:-$PYTHON}" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q "$@"
}

log "Python environment: pinned to the z2jh hub image ($Z2JH_DIR/hub-image-requirements.txt)"
# The hub image's list as constraints: whatever we install gets exactly the hub's versions.
# psycopg2 and pycurl are C extensions for database/HTTP backends nbspawner doesn't use.
CONSTRAINTS="$REPO/.venv-pinned.constraints.txt"
grep -E '^[A-Za-z0-9_.-]+==' "$Z2JH_DIR/hub-image-requirements.txt" \
  | grep -vE '^(psycopg2|pycurl)==' > "$CONSTRAINTS"
make_venv .venv-pinned -c "$CONSTRAINTS" \
  jupyterhub jupyterhub-kubespawner oauthenticator jupyterhub-ldapauthenticator ldap3 \
  prometheus-client pyyaml jsonschema traitlets tornado
# the package itself exactly as an admin installs it into the hub image: no dependencies pulled
.venv-pinned/bin/python -m pip install -q --no-deps -e .
.venv-pinned/bin/python -c "import nbspawner, nbspawner.spawner; print('hub-image environment loads', nbspawner.NBSpawner)"
.venv-pinned/bin/python -m pip install -q -c "$CONSTRAINTS" -e ".[test,docs]"

log "Python environment: the z2jh 4.4.0 release's hub image (Python 3.12, kubespawner 7.0.0)"
# the release admins run: its hub image is Python 3.12 with $Z2JH_DIR/hub-image-requirements-4.4.0.txt
is_312() { [ -n "$1" ] && "$1" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; }
if [ -z "${PYTHON312:-}" ]; then
  # a pyenv shim on the PATH may not run without a selected version: try real interpreters
  for candidate in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 2>/dev/null | sort -V -r) \
      /usr/bin/python3.12 /usr/local/bin/python3.12 "$(command -v python3.12 || true)"; do
    if is_312 "$candidate"; then PYTHON312="$candidate"; break; fi
  done
fi
if ! is_312 "${PYTHON312:-}"; then
  echo "Python 3.12 not found (set PYTHON312=/path/to/python3.12): the 4.4.0 leg needs it" >&2
  exit 2
fi
CONSTRAINTS_440="$REPO/.venv-440.constraints.txt"
grep -E '^[A-Za-z0-9_.-]+==' "$Z2JH_DIR/hub-image-requirements-4.4.0.txt" \
  | grep -vE '^(psycopg2|pycurl)==' > "$CONSTRAINTS_440"
VENV_PYTHON="$PYTHON312" make_venv .venv-440 -c "$CONSTRAINTS_440" \
  jupyterhub jupyterhub-kubespawner oauthenticator jupyterhub-ldapauthenticator ldap3 \
  prometheus-client pyyaml jsonschema traitlets tornado
.venv-440/bin/python -m pip install -q --no-deps -e .
.venv-440/bin/python -c "import nbspawner, nbspawner.spawner, kubespawner, sys; print('4.4.0 hub environment loads', kubespawner.__version__, sys.version.split()[0])"
.venv-440/bin/python -m pip install -q -c "$CONSTRAINTS_440" -e ".[test,docs]"

log "Python environment: newest releases"
make_venv .venv-latest --upgrade -e ".[test,docs]"

log "lint"
.venv-latest/bin/ruff check nbspawner tests benchmarks
.venv-latest/bin/ruff format --check nbspawner tests benchmarks

run_suite() {
  local venv="$1"; shift
  log "pytest in $venv ($("$REPO/$venv/bin/python" -c 'import jupyterhub, kubespawner; print("jupyterhub", jupyterhub.__version__, "kubespawner", kubespawner.__version__)'))"
  # -p no:cacheprovider: a fresh clone has nothing to reuse; keep the tree clean
  "$REPO/$venv/bin/python" -m pytest -p no:cacheprovider tests "$@" \
    --junitxml="$REPO/test-artifacts/junit-$venv.xml"
}
mkdir -p test-artifacts
run_suite .venv-440 "$@"
run_suite .venv-pinned "$@"
run_suite .venv-latest "$@"

log "checking that nothing was skipped"
"$PYTHON" "$HERE/check-no-skips.py" test-artifacts/junit-.venv-440.xml \
  test-artifacts/junit-.venv-pinned.xml test-artifacts/junit-.venv-latest.xml
