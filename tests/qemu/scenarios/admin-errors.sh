# Every marsadm error path of docs/resource-control.md on a real node: a clear message, a non-zero
# exit, and nothing written to /mars (the tree is compared before and after each refusal).
# timeout: 240
DATA_MB=128 MARS_MB=256
cluster_run_all 1 admin-errors.sh
