#!/usr/bin/env bash
# Prints, every 2 s, each engine's head (eth_blockNumber on op-reth's HTTP RPC) and each
# op-gossip node's connected peers (opp2p_peerStats on its admin RPC), for the compose stack.
set -euo pipefail
rpc() { curl -s -m 2 -H 'content-type: application/json' -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":$3}" "$1"; }
while true; do
    line=""
    for pair in "seq 8545 9545" "f1 8546 9546" "f2 8547 9547"; do
        set -- $pair
        head=$(rpc "http://127.0.0.1:$2" eth_blockNumber '[]' | sed -n 's/.*"result":"\(0x[0-9a-f]*\)".*/\1/p')
        peers=$(rpc "http://127.0.0.1:$3" opp2p_peerStats '[]' | sed -n 's/.*"connected":\([0-9]*\).*/\1/p')
        line+="$1: head $((${head:-0x0})) peers ${peers:-?}   "
    done
    echo "$(date +%T)  $line"
    sleep 2
done
