# Guest side of scripts/demo.sh (two nodes): what an admin types, shown with its output.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
run() { echo "# $*"; "$@"; }
SIZE_MB=128

run mount_mars
run insmod "$MARS_KO"
if [ "$NODE" = 1 ]; then
  run marsadm create-cluster --ip 10.78.0.1
  cp /mars/.secret "$OUT/secret"
  run marsadm create-resource r0 /dev/vda --size $((SIZE_MB << 20))
  # Data before the secondary exists: it comes to node2 by a sync.
  run mkfs.ext4 -q /dev/mars/r0
  mkdir -p /tmp/r0
  run mount /dev/mars/r0 /tmp/r0
  run dd if=/dev/urandom of=/tmp/r0/before-join bs=1M count=16 conv=fsync status=none
  mark created
  wait_mark 2 240 joined
  # And data while node2 syncs: it comes by the log.
  run dd if=/dev/urandom of=/tmp/r0/during-sync bs=1M count=8 conv=fsync status=none
  run ls -l /tmp/r0
  run df -h /tmp/r0
  run umount /tmp/r0
  run marsadm view r0
  dd if=/dev/mars/r0 bs=1M count=$SIZE_MB iflag=direct status=none | sha256sum | cut -d' ' -f1 >"$OUT/sha.1"
  mark written
  wait_mark 2 300 compared
  run marsadm secondary r0
  run marsadm down r0
else
  wait_mark 1 240 created
  echo "# (the admin copies node1's /mars/.secret here)"
  run marsadm join-cluster node1 --ip 10.78.0.2 --secret-file "$OUT/secret"
  wait_for "[ -n \"\$(tree_value resource-r0/size)\" ]" 20
  run marsadm join-resource r0 /dev/vda
  mark joined
  wait_for "[ -n \"\$(tree_value resource-r0/actual-node2/sync)\" ]" 60
  run marsadm view r0
  run marsadm wait-sync r0 --timeout 300
  wait_mark 1 300 written
  run marsadm wait-replay r0 --timeout 240
  run marsadm view all
  echo "# sha256 of node1's /dev/mars/r0: $(cat "$OUT/sha.1")"
  sha=$(dd if=/dev/vda bs=1M count=$SIZE_MB iflag=direct status=none | sha256sum | cut -d' ' -f1)
  echo "# sha256 of node2's copy on /dev/vda: $sha"
  [ "$sha" = "$(cat "$OUT/sha.1")" ] || fail "node2's copy differs from node1's data"
  echo "# equal: node2 holds node1's data"
  mark compared
fi
barrier done 240
run rmmod mars
dmesg | grep -E 'mars:' || true
