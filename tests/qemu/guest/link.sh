# Guest side of scenarios/link.sh: ping the other node by name, over the link found by MAC.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

peer=node$(( NODE == 1 ? 2 : 1 ))
[ "$(hostname)" = "$HOST" ] || fail "hostname is $(hostname), expected $HOST"
for attempt in $(seq 1 30); do
  if ping -c 3 -W 2 "$peer"; then echo "reached $peer"; exit 0; fi
  sleep 1
done
fail "cannot reach $peer"
