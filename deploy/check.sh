#!/usr/bin/env bash
# Validate deploy/compose.yaml without a container engine.
# Exit 0: valid; 3: no docker-compose / docker compose found; other: invalid.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export WORKSHOP_JWT_SECRET="${WORKSHOP_JWT_SECRET:-check-only-secret}"

if command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    echo "check.sh: docker-compose not found (apt-get install docker-compose, or Docker's compose plugin)" >&2
    exit 3
fi

"${compose[@]}" -f "$here/compose.yaml" config --quiet
# The file must refuse to render without the secret.
if env -u WORKSHOP_JWT_SECRET "${compose[@]}" -f "$here/compose.yaml" config --quiet >/dev/null 2>&1; then
    echo "check.sh: compose.yaml rendered without WORKSHOP_JWT_SECRET" >&2
    exit 1
fi
echo "check.sh: compose.yaml is valid ($("${compose[@]}" version --short 2>/dev/null || echo unknown))"
