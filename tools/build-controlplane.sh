#!/usr/bin/env bash
# Build (once) and cache the Kubernetes control plane the k8s tests run against:
# kube-apiserver from the k8s.io/kubernetes Go module and etcd from its Go module.
#
# No kube-apiserver binary ships in Debian, PyPI or npm, and Debian's etcd is too old for
# current Kubernetes. k8s.io/kubernetes is not meant to be used as a module: its go.mod
# replaces every k8s.io/<staging> module with ./staging/src/..., and such replace
# directives are ignored outside the main module. The workaround (kubernetes issue 79384)
# is a throw-away main module that requires k8s.io/kubernetes vX.Y.Z and replaces each
# staging module with its published twin v0.Y.Z. etcd is built the same way (its server
# module also carries ../ replace directives for its sibling modules).
#
# Usage: tools/build-controlplane.sh [--print-dir | --clean-go-cache]
#   (no argument)     build unless the binaries are already cached; print the directory
#   --print-dir       only print the directory the binaries are (or would be) cached in
#   --clean-go-cache  remove the Go module/build cache this script keeps (binaries stay)
#
# Environment:
#   NBSPAWNER_CACHE          cache root (default: $HOME/.cache/nbspawner)
#   NBSPAWNER_K8S_VERSION    Kubernetes release (default below)
#   NBSPAWNER_ETCD_VERSION   etcd release (default below: the one that release's go.mod uses)
#   GOPROXY                  as usual (default: proxy.golang.org)
#
# Output: $NBSPAWNER_CACHE/controlplane/<k8s-version>/{kube-apiserver,etcd,VERSIONS}
# The first build downloads ~1 GB of modules and compiles for 10-25 minutes on 2 cores.
set -euo pipefail

K8S_VERSION="${NBSPAWNER_K8S_VERSION:-v1.35.4}"
ETCD_VERSION="${NBSPAWNER_ETCD_VERSION:-v3.6.5}"
CACHE_ROOT="${NBSPAWNER_CACHE:-$HOME/.cache/nbspawner}/controlplane"
OUT="$CACHE_ROOT/$K8S_VERSION"
# a private Go module + build cache, so the build neither depends on nor pollutes the
# developer's own; kept between runs so building another version is faster
GOWORK_ROOT="$CACHE_ROOT/_go"

case "${1:-}" in
  --print-dir) echo "$OUT"; exit 0 ;;
  --clean-go-cache)
    if [ -d "$GOWORK_ROOT" ]; then
      chmod -R u+w "$GOWORK_ROOT" && rm -rf "$GOWORK_ROOT"
    fi
    echo "removed $GOWORK_ROOT"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-dir | --clean-go-cache]" >&2; exit 2 ;;
esac

if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/etcd" ]; then
  echo "control plane $K8S_VERSION already built in $OUT"
  exit 0
fi

command -v go >/dev/null || { echo "error: the Go toolchain (go >= 1.25) is required" >&2; exit 1; }

mkdir -p "$OUT" "$GOWORK_ROOT"
# one build at a time (two test runs starting together must not race)
exec 9>"$CACHE_ROOT/.build.lock"
if ! flock -n 9; then
  echo "another build holds $CACHE_ROOT/.build.lock; waiting..."
  flock 9
  if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/etcd" ]; then
    echo "control plane $K8S_VERSION built by the other process in $OUT"
    exit 0
  fi
fi

START=$(date +%s)
export GOPATH="$GOWORK_ROOT/gopath"
export GOMODCACHE="$GOWORK_ROOT/gopath/pkg/mod"
export GOCACHE="$GOWORK_ROOT/build"
export GOFLAGS="-trimpath -buildvcs=false -mod=mod"
export CGO_ENABLED=0
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export GO111MODULE=on
# two cores: keep parallelism modest so the machine stays usable
JOBS="${NBSPAWNER_BUILD_JOBS:-2}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bin"

minor="${K8S_VERSION#v1.}"          # 35.4
STAGING_VERSION="v0.${minor}"        # v0.35.4
major_minor="${minor%%.*}"           # 35
BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

step() { echo "[$(($(date +%s) - START))s] $*"; }

# ---------------------------------------------------------------- kube-apiserver
if [ ! -x "$OUT/kube-apiserver" ]; then
  step "resolving k8s.io/kubernetes@$K8S_VERSION"
  mkdir -p "$WORK/k8s"
  cd "$WORK/k8s"
  # the release's own go.mod tells which modules are staging modules
  k8s_gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [ -f "$k8s_gomod" ] || { echo "error: cannot download k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
  go_directive="$(awk '$1 == "go" { print $2; exit }' "$k8s_gomod")"
  {
    echo "module nbspawner.test/controlplane"
    echo
    echo "go $go_directive"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    awk -v v="$STAGING_VERSION" '
      $2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, v }
    ' "$k8s_gomod"
    echo ")"
  } > go.mod
  n_repl="$(grep -c '=> k8s.io/' go.mod || true)"
  [ "$n_repl" -gt 10 ] || { echo "error: found only $n_repl staging modules in $k8s_gomod" >&2; exit 1; }
  step "replacing $n_repl staging modules by $STAGING_VERSION; downloading modules"
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION"
  step "compiling kube-apiserver (the long part)"
  pkg=k8s.io/component-base/version
  cpkg=k8s.io/client-go/pkg/version
  ldflags="-s -w"
  for p in "$pkg" "$cpkg"; do
    ldflags="$ldflags -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$major_minor"
    ldflags="$ldflags -X $p.gitTreeState=clean -X $p.buildDate=$BUILD_DATE"
  done
  go build -p "$JOBS" -ldflags "$ldflags" -o "$WORK/bin/kube-apiserver" \
    k8s.io/kubernetes/cmd/kube-apiserver
  "$WORK/bin/kube-apiserver" --version
  mv "$WORK/bin/kube-apiserver" "$OUT/kube-apiserver"
  step "kube-apiserver ready"
fi

# ---------------------------------------------------------------- etcd
if [ ! -x "$OUT/etcd" ]; then
  step "resolving go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  mkdir -p "$WORK/etcd"
  cd "$WORK/etcd"
  etcd_gomod="$(go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [ -f "$etcd_gomod" ] || { echo "error: cannot download etcd server $ETCD_VERSION" >&2; exit 1; }
  go_directive="$(awk '$1 == "go" { print $2; exit }' "$etcd_gomod")"
  {
    echo "module nbspawner.test/etcd"
    echo
    echo "go $go_directive"
    echo
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    echo
    # the server module replaces its siblings with ../<dir>: pin them to the same release
    echo "replace ("
    awk -v v="$ETCD_VERSION" '
      $2 == "=>" && $3 ~ /^\.\.\// && $1 ~ /^go\.etcd\.io\/etcd\// { printf "\t%s => %s %s\n", $1, $1, v }
    ' "$etcd_gomod"
    echo ")"
  } > go.mod
  step "downloading etcd modules"
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  step "compiling etcd"
  go build -p "$JOBS" -ldflags "-s -w" -o "$WORK/bin/etcd" go.etcd.io/etcd/server/v3
  "$WORK/bin/etcd" --version
  mv "$WORK/bin/etcd" "$OUT/etcd"
  step "etcd ready"
fi

cat > "$OUT/VERSIONS" <<EOF
kube-apiserver $K8S_VERSION (k8s.io/* staging modules $STAGING_VERSION)
etcd $ETCD_VERSION
built $BUILD_DATE with $(go version | awk '{print $3}')
EOF

END=$(date +%s)
echo "built control plane $K8S_VERSION (etcd $ETCD_VERSION) in $((END - START)) s"
echo "binaries:  $OUT ($(du -sh "$OUT" | cut -f1))"
echo "go caches: $GOWORK_ROOT ($(du -sh "$GOWORK_ROOT" | cut -f1)); remove with: $0 --clean-go-cache"
