# The primary never waits for the link. node1 writes 24 MiB alone (no secondary yet); node2
# joins and syncs them (on the clean link: sync is not what this scenario is about, and on the
# lossy one a single TCP stream moves only about 0.4 MB/s); then both nodes put netem delay 25 ms
# + 0.5% loss on their link (54 ms RTT, as in ../shared/docs/anchors.md) and node1 writes 24 MiB
# more while node2 fetches: that job must reach at least half the rate of the first (emulation
# noise; the tight figure is the benchmark's). Meanwhile node2's fetch is limited to 1 MiB/s for
# 10 s (the rate limit holds, the lag shows), then unlimited; once the writes stop node2 catches
# up over the lossy link and the two data devices have equal SHA-256.
# exclusive: its rates are compared with each other
# timeout: 900
DATA_MB=128 MARS_MB=384
cluster_run_all 2 lossy-link.sh
