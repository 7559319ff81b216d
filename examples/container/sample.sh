# The sample program of pod.yaml (run by the image's busybox sh, under
# `sexton init` as PID 1): every second it leaves an orphan behind, the
# way a program that double-forks a helper does, and says whether any
# zombie is left in the container. TERM (what `kubectl delete` and
# `docker stop` send to PID 1, forwarded by sexton) ends it cleanly.
trap 'echo "sample: got TERM, exiting"; exit 0' TERM
echo "sample: pid $$, PID 1 is $(cat /proc/1/comm)"
n=0
while :; do
  (sleep 0.5 &)    # the subshell exits at once: its sleep is adopted by PID 1
  n=$((n + 1))
  if /sexton zombies >/dev/null; then z=none; else z=some; fi
  echo "sample: $n orphans so far, zombies: $z"
  # Sleep in the background and wait, so that TERM runs the trap at once.
  sleep 1 &
  wait $!
done
