# The harness's own kernel checks can fail: a WARN provoked in a boot that is then killed (so it
# never writes nodeK.dmesg), and a task blocked in D state past hung_task_timeout_secs, must each
# be found in the console log that reached the host, and make node_check_kernel fail. The
# provoked logs are then moved to expected/, which the runner's scan of every boot leaves out.
# timeout: 420
cluster_init 1
for mode in warn hung; do
  node_start 1 harness-provoke.sh "$mode"
  boot=${NODE_BOOTS[1]}
  for ((t = 0; t < 1500; t++)); do
    [ -e "$OUT/provoked.$mode" ] && break
    kill -0 "${NODE_PGID[1]}" 2>/dev/null || { echo "$mode: the VM ended early:" >&2; tail -20 "$OUT/node1.log" >&2; exit 1; }
    sleep 0.2
  done
  [ -e "$OUT/provoked.$mode" ] || { echo "$mode: never provoked" >&2; tail -20 "$OUT/node1.log" >&2; exit 1; }
  sleep 1
  node_kill 1
  [ ! -e "$OUT/node1.dmesg" ] || { echo "$mode: a killed boot wrote node1.dmesg" >&2; exit 1; }
  if node_check_kernel 1 2>"$OUT/check.$mode"; then
    echo "$mode: the harness did not see the provoked report in node1.console.$boot" >&2
    exit 1
  fi
  case $mode in warn) expect='WARNING:.*lkdtm' ;; hung) expect='INFO: task .* blocked for more than' ;; esac
  grep -E -q "$expect" "$OUT/check.$mode" || { echo "$mode: the check failed, but not on /$expect/:" >&2; cat "$OUT/check.$mode" >&2; exit 1; }
  echo "$mode: caught in the console of killed boot $boot: $(grep -E -m1 "$expect" "$OUT/check.$mode")"
  mkdir -p "$OUT/expected"
  mv "$OUT/node1.console.$boot" "$OUT/expected/"
done
