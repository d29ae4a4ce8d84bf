# A secondary's data device is a prefix of the primary's history: node1 writes sequence-stamped
# 4 KiB blocks (write i to block i mod 2048) to /dev/mars/r0 while node2 fetches and replays; at
# seeded random moments node2 pauses replay and its device must hold exactly the state after the
# first m writes for some m (never a newer write without all older ones, never a torn block),
# and m must grow; after the writes end, wait-replay, and the devices are equal.
# timeout: 480
DATA_MB=64 MARS_MB=384
cluster_run_all 2 prefix.sh
