#!/bin/bash
# rpc.sh HOST PORT METHOD PARAMS: one JSON-RPC call over plain HTTP, the answer on stdout.
# The op-reth image and debian-slim have bash but no curl, so the request goes over bash's
# /dev/tcp. Used by the engines' healthcheck and by rollup.sh.
set -eu
host=$1 port=$2 method=$3 params=${4:-[]}
body="{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$method\",\"params\":$params}"
exec 3<>"/dev/tcp/$host/$port"
printf 'POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "${#body}" "$body" >&3
# The body is the last line of the answer (no chunking: the request says Connection: close).
tail -n 1 <&3
