# Guest side of scenarios/admin-errors.sh.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

# The /mars tree as marsadm writes it (names and link targets; without the status keys the kernel
# refreshes on its own): must not change when marsadm refuses.
# The kernel replaces its status keys every round (a `.k-NAME` link renamed over the key), so
# find may meet a name that is gone a moment later: that is not a failure of the listing.
tree() {
  { find /mars -path /mars/lost+found -prune -o -printf '%p %l\n' 2>/dev/null || true; } \
    | grep -v -E '/(actual-|replay-|\.k-)' | sort
}
# Runs marsadm with the arguments after `--`, which must fail with output matching $1, and must
# leave the tree alone.
refused() {
  local pattern=$1 before after
  shift
  before=$(tree)
  expect_fail marsadm "$@"
  echo "$LAST_OUTPUT" | grep -E -q -- "$pattern" || fail "marsadm $*: message lacks /$pattern/: $LAST_OUTPUT"
  after=$(tree)
  [ "$before" = "$after" ] || fail "marsadm $* changed /mars although it failed"
}

# No /mars filesystem yet.
refused "is not a mounted filesystem" create-cluster --ip 192.0.2.1
mount_mars
load_mars interval_ms=200
refused "not a member of the cluster" create-resource r0 /dev/vda
refused "is not an IPv4 or IPv6 address" create-cluster --ip 300.1.2.3
# create-cluster works before the module is loaded (as in the original); the rest needs it.
unload_mars
marsadm create-cluster --ip 192.0.2.1
refused "mars.ko is not loaded" view all
refused "mars.ko is not loaded" create-resource r0 /dev/vda
load_mars interval_ms=200
before=$(tree)
# Changing anything takes root (looking does not).
expect_fail setpriv --reuid=65534 --regid=65534 --clear-groups "$(command -v marsadm)" create-resource r0 /dev/vda
echo "$LAST_OUTPUT" | grep -q "must run as root" || fail "non-root: $LAST_OUTPUT"
setpriv --reuid=65534 --regid=65534 --clear-groups "$(command -v marsadm)" view all >/dev/null || fail "non-root view"
[ "$before" = "$(tree)" ] || fail "a non-root marsadm changed /mars"

# create-resource: names, devices, sizes.
refused "cannot be used as a resource name" create-resource R0 /dev/vda
refused "is 27 bytes long, the limit is 26" create-resource "$(printf 'a%.0s' $(seq 27))" /dev/vda
refused "does not exist" create-resource r0 /dev/nosuchdisk
refused "is not a block device" create-resource r0 /dev/null
refused "is larger than /dev/vda" create-resource r0 /dev/vda --size $((256 << 20))
refused "not a multiple of 4096" create-resource r0 /dev/vda --size 1048577
modprobe loop
truncate -s 512K /tmp/tiny.img
tiny=$(losetup --find --show /tmp/tiny.img)
refused "a resource needs at least 1048576 bytes" create-resource r0 "$tiny"
losetup -d "$tiny"
mkfs.ext4 -q -F /dev/vda
mkdir -p /tmp/vda && mount /dev/vda /tmp/vda
refused "is in use" create-resource r0 /dev/vda
umount /tmp/vda

# Commands on a resource that does not exist.
for cmd in primary secondary up down log-rotate log-delete delete-resource view; do
  refused "unknown resource nosuch" "$cmd" nosuch
done

# A real resource: state errors.
marsadm create-resource r0 /dev/vda --size $((64 << 20))
refused "exists already" create-resource r0 /dev/vda
refused "is the data device of resource r0" create-resource r1 /dev/vda
# A request counter that does not parse (written by hand) asks for nothing and is reported.
stamp=$(readlink /mars/resource-r0/size); stamp=${stamp#*|}
ln -s "lots|$stamp" /mars/resource-r0/todo-node1/log-rotate
wait_for "tree_value resource-r0/actual-node1/error | grep -q 'resource-r0/todo-node1/log-rotate holds \"lots\", not a number: ignored'" 10
[ "$(ls /mars/resource-r0 | grep -c '^log-')" = 1 ] || fail "a malformed log-rotate counter rotated: $(ls /mars/resource-r0)"
rm /mars/resource-r0/todo-node1/log-rotate
wait_for '[ -z "$(tree_value resource-r0/actual-node1/error)" ]' 10
exec 3</dev/mars/r0
wait_for '[ "$(tree_value resource-r0/actual-node1/open-count)" = 1 ]' 5
refused "in use" secondary r0
exec 3<&-
marsadm secondary r0
refused "not primary on node1" log-rotate r0
refused "still up on node1" delete-resource r0
marsadm down r0
refused "is down on node1" primary r0
refused "not attached on node1" log-delete r0
# A malformed size key (written by hand, past marsadm) is refused by the kernel and reported,
# never taken as 0: with the attach switch on, the resource stays detached and says why.
size_link=$(readlink /mars/resource-r0/size); attach_link=$(readlink /mars/resource-r0/todo-node1/attach)
ln -sfn "lots|${size_link#*|}" /mars/resource-r0/size
ln -sfn "1|${attach_link#*|}" /mars/resource-r0/todo-node1/attach
wait_for "tree_value resource-r0/actual-node1/error | grep -q 'resource-r0/size holds \"lots\", not a size in bytes: not attaching'" 10
[ "$(tree_value resource-r0/actual-node1/is-attached)" = 0 ] || fail "attached with a malformed size key"
ln -sfn "$attach_link" /mars/resource-r0/todo-node1/attach
ln -sfn "$size_link" /mars/resource-r0/size
wait_for '[ -z "$(tree_value resource-r0/actual-node1/error)" ]' 10
marsadm delete-resource r0

# With the module gone again, every command says so.
unload_mars
refused "mars.ko is not loaded" view all
echo "admin errors OK"
