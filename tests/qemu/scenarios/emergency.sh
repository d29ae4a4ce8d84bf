# /mars runs full on a primary: logging stops (emergency mode, said in dmesg, the status keys and
# marsadm view), no write fails, nothing is corrupted, the stale logfiles are dropped so no later
# replay can bring back older data, and once there is room again the resource logs again.
# timeout: 420
DATA_MB=256 MARS_MB=64
cluster_run_all 1 emergency.sh
