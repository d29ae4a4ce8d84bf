# Loads and unloads mars.ko 20 times; status must be served each time and nothing may leak.
# timeout: 300
cluster_run_all 1 load-unload.sh
