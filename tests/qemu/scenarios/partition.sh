# The link goes down for 30 s while the primary writes: node1 runs 4 KiB random writes in
# 10-second slices before, during and after the cut (both sides take their interface down).
# No slice during the cut may fall below half the rate of the slice before it (the primary
# never stalls for its peer); node2 shows the primary unreachable meanwhile. After the heal
# node2 fetches what it missed, at first limited to 1 MiB/s for 10 s (the limit holds; the view
# shows the lag in seconds), then unlimited; it replays it, and the two data devices have equal
# SHA-256.
# exclusive: it counts IOPS before, during and after the cut
# timeout: 720
DATA_MB=96 MARS_MB=1024
cluster_run_all 2 partition.sh
