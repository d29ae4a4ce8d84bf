# Two nodes reach each other over their private QEMU socket link on 127.0.0.1.
# timeout: 180
cluster_run_all 2 link.sh
