# A full sync: node1 fills its 200 MiB resource with random data, node2 joins with a blank disk
# (every block differs) while node1 goes on writing 4 KiB blocks all over the device. Midway
# through the copy node2's module is unloaded and loaded again: the sync resumes at its stored
# position (it transfers less than the whole device after the reload), the replay after it
# makes the device consistent, and the two data devices end with equal SHA-256.
# timeout: 900
DATA_MB=224 MARS_MB=768
cluster_run_all 2 full-sync.sh
