#!/bin/bash
# Runs as PID-1's child inside every test VM: sets the node up (links, /etc/hosts, a kmemleak
# baseline), runs the scenario's guest script, then records its exit code, dmesg and kmemleak
# findings in the shared results directory. Usage: init.sh NODE_ENV_FILE GUEST_SCRIPT [ARGS...]
set -u
env_file=$1; script=$2; shift 2
# shellcheck disable=SC1090
source "$env_file"
export NODE NODES HOST OUT MARS_ROOT MARS_KO PATH SEED LINKS SLOW
log="$OUT/node$NODE.log"
echo "== node$NODE boot $(date +%T) running $(basename "$script") $*" >>"$log"

ip link set lo up
# Each node has one host address, 10.78.0.K (and fd78::K), on lo, routed over the point-to-point
# link to each peer: the address a member publishes is reachable from every other member, as on
# a routed network. /etc/hosts names the nodes by it.
ip addr add "10.78.0.$NODE/32" dev lo
ip -6 addr add "fd78::$NODE/128" dev lo nodad 2>>"$log" || echo "no IPv6 host address" >>"$log"
for link in $LINKS; do
  IFS=, read -r peer mac my_ip peer_ip <<<"$link"
  iface=$(grep -il "^$mac\$" /sys/class/net/*/address | awk -F/ '{print $5}' | head -1)
  if [ -z "$iface" ]; then echo "no interface with MAC $mac" >>"$log"; echo 254 >"$OUT/node$NODE.rc"; exit 1; fi
  ip addr add "$my_ip/24" dev "$iface"
  ip link set "$iface" up
  ip route add "10.78.0.$peer/32" via "$peer_ip" src "10.78.0.$NODE"
  sub=$(echo "$my_ip" | cut -d. -f3)
  { ip -6 addr add "fd77:$sub::$NODE/64" dev "$iface" nodad &&
    ip -6 route add "fd78::$peer/128" via "fd77:$sub::$peer" src "fd78::$NODE"; } 2>>"$log" ||
    echo "no IPv6 route to node$peer" >>"$log"
  echo "10.78.0.$peer node$peer" >>/etc/hosts
done

kmemleak=/sys/kernel/debug/kmemleak
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
# Forget whatever boot itself left behind: only leaks made by the scenario count.
[ -w "$kmemleak" ] && echo clear >"$kmemleak"

(cd /tmp && bash "$MARS_ROOT/tests/qemu/guest/$script" "$@") >>"$log" 2>&1
rc=$?
echo "== node$NODE guest script exited $rc at $(date +%T)" >>"$log"

if [ -w "$kmemleak" ]; then
  # kmemleak reports an object only once it is older than 5 s and seen unreferenced twice.
  sleep 6; echo scan >"$kmemleak"; echo scan >"$kmemleak"
  cat "$kmemleak" >"$OUT/node$NODE.kmemleak"
fi
dmesg >"$OUT/node$NODE.dmesg"
echo "$rc" >"$OUT/node$NODE.rc"
sync
