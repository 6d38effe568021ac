#!/usr/bin/env bash
# Builds op-gossip's image and starts the compose stack (docker-compose.yml): op-reth's OP dev
# chain as the engine of a sequencer and two followers. Needs a Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
docker compose build
docker compose up -d
echo "started; watch with scripts/compose-heads.sh, stop with: docker compose down -v"
