# Hosts without the cluster's secret are refused on every channel and logged, and the members
# are not disturbed: a host of another cluster whose module tries a member, marsadm check-peer
# and an independent client with a wrong secret.
# timeout: 420
cluster_run_all 3 peer-auth.sh
