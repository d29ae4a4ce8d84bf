# Guest side of scenarios/log-serve.sh (one node: the client is peer_tool.py on the same host).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
tool="python3 $MARS_ROOT/tests/qemu/guest/peer_tool.py"
copy=/tmp/copy
mkdir -p "$copy"

mount_mars
load_mars interval_ms=200
form_cluster
marsadm create-resource r0 /dev/vda --size $((64 << 20))
log_pos() { tree_value resource-r0/actual-node1/log; }

# Fetches every logfile into $copy (appending) and checks each copy against the primary's file.
fetch_and_compare() {
  $tool logcopy 10.78.0.1 7778 /mars/.secret node9 r0 "$copy" 4 >/tmp/listed || fail "logcopy: $(cat /tmp/listed)"
  cat /tmp/listed
  local name size
  while read -r name size; do
    [ "$(stat -c %s "$copy/$name")" = "$size" ] || fail "$name: copied $(stat -c %s "$copy/$name") bytes, listed $size"
    cmp -n "$size" "$copy/$name" "/mars/resource-r0/$name" || fail "$name: the copy differs from the primary's logfile"
  done </tmp/listed
}
listed() { awk -v f="$1" '$1 == f {print $2}' /tmp/listed; }

# 4 MiB without a flush: durable after the logger's periodic flush, then served.
dd if=/dev/urandom of=/dev/mars/r0 bs=1M count=4 oflag=direct status=none
sleep 2
fetch_and_compare
cur=log-000000001-node1
served=$(listed $cur)
logged=$(log_pos | cut -d, -f2)
echo "served $served of $cur, logged $logged"
[ "$served" -gt $((4 << 20)) ] || fail "only $served bytes of $cur served after 4 MiB and 2 s"
[ "$served" -le "$logged" ] || fail "$served bytes of $cur served, but only $logged logged"
[ $((served % 512)) = 0 ] || fail "served length $served is no multiple of 512: not at a batch end"
[ "$(stat -c %s /mars/resource-r0/$cur)" -gt "$served" ] || fail "the preallocated tail was not held back"

# Rotation: the closed logfile is served whole (its final length), the new one from its start;
# the fetch of the old one resumes where the copy ends.
dd if=/dev/urandom of=/dev/mars/r0 bs=1M count=2 seek=8 oflag=direct status=none
marsadm log-rotate r0
dd if=/dev/urandom of=/dev/mars/r0 bs=1M count=2 seek=16 oflag=direct status=none
sync /dev/mars/r0
fetch_and_compare
[ "$(listed $cur)" = "$(stat -c %s /mars/resource-r0/$cur)" ] || fail "closed $cur served as $(listed $cur) bytes, it has $(stat -c %s /mars/resource-r0/$cur)"
next=log-000000002-node1
[ "$(listed $next)" -gt $((2 << 20)) ] || fail "after a flush only $(listed $next) bytes of $next are served"

# A secondary that asks a second time gets nothing twice: the copies stay equal.
fetch_and_compare
marsadm secondary r0
# Closed for good: every logfile served whole.
fetch_and_compare
[ "$(listed $next)" = "$(stat -c %s /mars/resource-r0/$next)" ] || fail "$next not served whole after the primary stopped"
unload_mars
echo "log-serve OK"
