# From another VM: random bytes, oversized lengths, half frames then silence, requests before
# authentication, 200 connections at once. The server never crashes nor allocates beyond its
# limits (slab usage back within a bound), the real peer stays connected. Then rmmod with a
# peer connected, a connect in progress to a peer that does not answer and an authenticated
# peer that stopped reading: each within seconds, nothing leaked (kmemleak, run.sh).
# timeout: 900
cluster_run_all 3 hostile-peer.sh
