#!/bin/bash
# Writes the rollup.json every op-gossip node of the compose stack shares, from the engines
# themselves: the L2 genesis hash is the sequencer's op-reth's block 0 and the chain id its
# eth_chainId (op-reth's `--chain dev`: every fork through Isthmus at genesis, Jovian active by
# timestamp), after checking that the followers' engines have the same genesis. A made-up hash
# would make the nodes refuse to start (they compare it with their engine's block 0).
# The genesis time is now, not the dev genesis block's timestamp (2023), so the sequencer's
# block n is due at now + 2n rather than three years ago. Run once by the `rollup` service
# into the shared /chain volume, after the engines report healthy.
set -eu
rpc() { bash /rpc.sh "$1" 8545 "$2" "${3:-[]}"; }
field() { grep -o "\"$1\":\"0x[0-9a-fA-F]*\"" | head -n 1 | cut -d'"' -f4; }
genesis=$(rpc reth-seq eth_getBlockByNumber '["0x0",false]' | field hash)
chain_id_hex=$(rpc reth-seq eth_chainId | field result)
for follower in reth-f1 reth-f2; do
  theirs=$(rpc "$follower" eth_getBlockByNumber '["0x0",false]' | field hash)
  if [ "$theirs" != "$genesis" ]; then
    echo "genesis of $follower is $theirs, the sequencer's engine has $genesis" >&2
    exit 1
  fi
done
if [ -z "$genesis" ] || [ -z "$chain_id_hex" ]; then
  echo "cannot read the engine's genesis or chain id" >&2
  exit 1
fi
chain_id=$((16#${chain_id_hex#0x}))
now=$(date +%s)
zero=0x0000000000000000000000000000000000000000000000000000000000000000
cat > /chain/rollup.json <<JSON
{
  "genesis": {"l1": {"hash": "$zero", "number": 0}, "l2": {"hash": "$genesis", "number": 0}, "l2_time": $now},
  "block_time": 2,
  "l2_chain_id": $chain_id,
  "regolith_time": 0, "canyon_time": 0, "delta_time": 0, "ecotone_time": 0, "fjord_time": 0,
  "granite_time": 0, "holocene_time": 0, "isthmus_time": 0, "jovian_time": 0
}
JSON
echo "rollup.json written (genesis $genesis, chain id $chain_id, genesis time $now)"
