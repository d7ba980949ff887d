#!/usr/bin/env bash
# Build (once) and cache helm v3, the tool z2jh admins deploy the chart with, from its Go module
# (helm.sh/helm/v3). The helm-chart tests lint and render the z2jh release chart with it.
#
# Only the Go module proxy is needed (no GitHub release download). helm's go.mod has no replace
# directives, so `go install helm.sh/helm/v3/cmd/helm@<version>` builds exactly the release's
# dependency set; the -X flags are the ones helm's own Makefile sets (version, and the default
# Kubernetes version `helm template`/`helm lint` assume, derived from the client-go it uses).
#
# Usage: tools/build-helm.sh [--print-dir | --clean-go-cache]
#   (no argument)     build unless the binary is already cached; print the directory
#   --print-dir       only print the directory the binary is (or would be) cached in
#   --clean-go-cache  remove the Go module/build cache this script keeps (the binary stays)
#
# Environment:
#   NBSPAWNER_CACHE          cache root (default: $HOME/.cache/nbspawner)
#   NBSPAWNER_HELM_VERSION   helm release (default below: the newest v3 on the module proxy
#                            when this script was written; `go list -m -versions helm.sh/helm/v3`)
#   GOPROXY                  as usual (default: proxy.golang.org)
#
# Output: $NBSPAWNER_CACHE/helm/<version>/{helm,VERSIONS}
# The first build downloads ~300 MB of modules and compiles for a few minutes on 2 cores.
set -euo pipefail

HELM_VERSION="${NBSPAWNER_HELM_VERSION:-v3.22.1}"
CACHE_ROOT="${NBSPAWNER_CACHE:-$HOME/.cache/nbspawner}/helm"
OUT="$CACHE_ROOT/$HELM_VERSION"
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

if [ -x "$OUT/helm" ]; then
  echo "helm $HELM_VERSION already built in $OUT"
  exit 0
fi

command -v go >/dev/null || { echo "error: the Go toolchain is required (helm $HELM_VERSION's go.mod says which version)" >&2; exit 1; }

mkdir -p "$OUT" "$GOWORK_ROOT"
# one build at a time (two test runs starting together must not race)
exec 9>"$CACHE_ROOT/.build.lock"
if ! flock -n 9; then
  echo "another build holds $CACHE_ROOT/.build.lock; waiting..."
  flock 9
  if [ -x "$OUT/helm" ]; then
    echo "helm $HELM_VERSION built by the other process in $OUT"
    exit 0
  fi
fi

START=$(date +%s)
export GOPATH="$GOWORK_ROOT/gopath"
export GOMODCACHE="$GOWORK_ROOT/gopath/pkg/mod"
export GOCACHE="$GOWORK_ROOT/build"
export GOFLAGS="-trimpath -buildvcs=false"
export CGO_ENABLED=0
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export GO111MODULE=on
# two cores: keep parallelism modest so the machine stays usable
JOBS="${NBSPAWNER_BUILD_JOBS:-2}"
BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

step() { echo "[$(($(date +%s) - START))s] $*"; }

step "resolving helm.sh/helm/v3@$HELM_VERSION"
helm_gomod="$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" \
  | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
[ -f "$helm_gomod" ] || { echo "error: cannot download helm.sh/helm/v3@$HELM_VERSION" >&2; exit 1; }
if grep -qE '^[[:space:]]*replace' "$helm_gomod"; then
  echo "error: helm $HELM_VERSION's go.mod has replace directives; go install cannot build it" >&2
  exit 1
fi
# as helm's Makefile: the default Kubernetes version is client-go's v0.X.Y -> 1.X
client_go="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$helm_gomod")"
k8s_minor="$(echo "$client_go" | cut -d. -f2)"
[ -n "$k8s_minor" ] || { echo "error: no k8s.io/client-go in $helm_gomod" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags="$ldflags -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags="$ldflags -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$k8s_minor"
done
step "downloading modules and compiling helm (client-go $client_go: default Kubernetes 1.$k8s_minor)"
GOBIN="$WORK/bin" go install -p "$JOBS" -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
"$WORK/bin/helm" version
mv "$WORK/bin/helm" "$OUT/helm"

cat > "$OUT/VERSIONS" <<EOF
helm $HELM_VERSION (helm.sh/helm/v3 from the Go module proxy; default Kubernetes 1.$k8s_minor)
built $BUILD_DATE with $(go version | awk '{print $3}')
EOF

END=$(date +%s)
echo "built helm $HELM_VERSION in $((END - START)) s"
echo "binary:    $OUT ($(du -sh "$OUT" | cut -f1))"
echo "go caches: $GOWORK_ROOT ($(du -sh "$GOWORK_ROOT" | cut -f1)); remove with: $0 --clean-go-cache"
