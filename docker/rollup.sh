#!/bin/sh
# Writes the rollup.json every op-gossip node of the compose stack shares: op-reth's dev chain
# (`--chain dev`: every fork through Isthmus at genesis, Jovian active by timestamp;
# shared/spec/engine-api.md), chain id 1337 with its L2 genesis time
# set to now, so block n is built at now + 2n and peers accept it (op-node rejects blocks more
# than 60 s old). Run once by the `rollup` service into the shared /chain volume.
set -eu
now=$(date +%s)
zero=0x0000000000000000000000000000000000000000000000000000000000000000
cat > /chain/rollup.json <<JSON
{
  "genesis": {"l1": {"hash": "$zero", "number": 0}, "l2": {"hash": "$zero", "number": 0}, "l2_time": $now},
  "block_time": 2,
  "l2_chain_id": 1337,
  "regolith_time": 0, "canyon_time": 0, "delta_time": 0, "ecotone_time": 0, "fjord_time": 0,
  "granite_time": 0, "holocene_time": 0, "isthmus_time": 0, "jovian_time": 0
}
JSON
echo "rollup.json written (genesis time $now)"
