# Guest side of scripts/demo.sh (two nodes): what an admin types, shown with its output.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
run() { echo "# $*"; "$@"; }

run mount_mars
run insmod "$MARS_KO"
if [ "$NODE" = 1 ]; then
  run marsadm create-cluster --ip 10.78.0.1
  cp /mars/.secret "$OUT/secret"
  run marsadm create-resource r0 /dev/vda
  run mkfs.ext4 -q /dev/mars/r0
  mkdir -p /tmp/r0
  run mount /dev/mars/r0 /tmp/r0
  run dd if=/dev/urandom of=/tmp/r0/file bs=1M count=16 conv=fsync status=none
  run df -h /tmp/r0
  mark created
  wait_mark 2 240 joined
  wait_peer_up 2
  run marsadm view
  wait_mark 2 120 viewed
  run umount /tmp/r0
  run marsadm secondary r0
  run marsadm down r0
else
  wait_mark 1 240 created
  echo "# (the admin copies node1's /mars/.secret here)"
  run marsadm join-cluster node1 --ip 10.78.0.2 --secret-file "$OUT/secret"
  mark joined
  wait_for "[ -n \"\$(tree_value resource-r0/size)\" ]" 20
  run marsadm view
  mark viewed
fi
barrier done 240
run rmmod mars
dmesg | grep -E 'mars:' || true
