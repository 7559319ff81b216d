#!/usr/bin/env bash
# The daemon monitor's footprint: sexton's monitor next to libslack's
# `daemon -r`, both supervising the same idle program. Prints a markdown
# table: RSS and PSS of the monitor process (from /proc/PID/smaps_rollup)
# and its wakeups (context switches) while the daemon idles, plus the time
# from the start command to the program running.
#
#   bash bench/daemon.sh            # idle window 10s, 3 rounds
#   IDLE=30 ROUNDS=5 bash bench/daemon.sh
set -euo pipefail
cd "$(dirname "$0")/.."

IDLE=${IDLE:-10}
ROUNDS=${ROUNDS:-3}

if ! command -v daemon >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq daemon >/dev/null
fi
cargo build --release -q
SEXTON=${CARGO_TARGET_DIR:-$PWD/target}/${CARGO_BUILD_TARGET:-x86_64-unknown-linux-musl}/release/sexton
work=$(mktemp -d)
cleanup() {
  "$SEXTON" daemon --stop --timeout 1s --pidfile "$work/sexton.pid" >/dev/null 2>&1 || true
  daemon --name=sexton-bench --pidfiles="$work" --stop >/dev/null 2>&1 || true
  for i in 1 2 3 4; do
    "$SEXTON" daemon --stop --timeout 1s --pidfile "$work/s$i.pid" >/dev/null 2>&1 || true
    daemon --name="sb$i" --pidfiles="$work" --stop >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
field() { awk -v k="$2:" '$1 == k { print $2 }' "$1"; }
wakeups() { # voluntary + involuntary context switches of a pid
  awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 } END { print n }' "/proc/$1/status"
}
wait_for() { # wait_for FILE: until it names a running process (10s at most)
  for _ in $(seq 1000); do
    if [ -s "$1" ] && kill -0 "$(head -n1 "$1")" 2>/dev/null; then return 0; fi
    sleep 0.01
  done
  echo "bench: $1 never named a running process" >&2
  exit 1
}

wait_gone() { # wait_gone FILE: until it has been removed (10s at most)
  for _ in $(seq 1000); do
    [ -e "$1" ] || return 0
    sleep 0.01
  done
  echo "bench: $1 was never removed" >&2
  exit 1
}

# sum FIELD PID...: a smaps_rollup field summed over the monitor's
# processes (sexton's guard and its worker; libslack's one process)
sum() {
  local f=$1 p n=0
  shift
  for p in "$@"; do n=$((n + $(field "/proc/$p/smaps_rollup" "$f"))); done
  echo "$n"
}
wakeups_of() { local p n=0; for p in "$@"; do n=$((n + $(wakeups "$p"))); done; echo "$n"; }

# measure NAME START_CMD MONITOR_PIDS_CMD STOP_CMD
# appends "rss pss wakeups start_ms" for one round to $work/NAME
measure() {
  local name=$1 start=$2 monpid=$3 stop=$4
  local t0 t1 mon a b
  # A warm page cache for every round: sexton's settled monitor drops
  # the binary's pages nothing else maps (src/idle.rs).
  cat "$SEXTON" >/dev/null
  t0=$(now_ms)
  eval "$start"
  t1=$(now_ms)
  # shellcheck disable=SC2207
  mon=($(eval "$monpid"))
  a=$(wakeups_of "${mon[@]}")
  sleep "$IDLE"
  b=$(wakeups_of "${mon[@]}")
  echo "$(sum Rss "${mon[@]}") $(sum Pss "${mon[@]}") $((b - a)) $((t1 - t0))" >>"$work/$name"
  eval "$stop"
}

# shared NAME START_FMT MONPID_FMT STOP_FMT: PSS of one monitor while four
# run (FMT has %d for the instance); appends the KiB to $work/NAME-shared
shared() {
  local name=$1 start=$2 monpid=$3 stop=$4 i mon
  for i in 1 2 3 4; do eval "$(printf "$start" "$i" "$i")"; done
  # shellcheck disable=SC2207
  mon=($(eval "$(printf "$monpid" 1)"))
  echo "$(sum Pss "${mon[@]}")" >>"$work/$name-shared"
  for i in 1 2 3 4; do eval "$(printf "$stop" "$i" "$i")"; done
}

for _ in $(seq "$ROUNDS"); do
  shared sexton \
    "$SEXTON daemon --respawn --pidfile $work/s%d.pid -- sleep 100000 # %d" \
    "w=\$(awk '{print \$4}' /proc/\$(head -n1 $work/s%d.pid)/stat); echo \$w \$(awk '{print \$4}' /proc/\$w/stat)" \
    "$SEXTON daemon --stop --pidfile $work/s%d.pid # %d"
  shared libslack \
    "daemon -r --name=sb%d --pidfiles=$work -- sleep 100000; wait_for $work/sb%d.clientpid" \
    "head -n1 $work/sb%d.pid" \
    "daemon --name=sb%d --pidfiles=$work --stop; wait_gone $work/sb%d.pid"
  measure sexton \
    "$SEXTON daemon --respawn --pidfile $work/sexton.pid -- sleep 100000" \
    "w=\$(awk '{print \$4}' /proc/\$(head -n1 $work/sexton.pid)/stat); echo \$w \$(awk '{print \$4}' /proc/\$w/stat)" \
    "$SEXTON daemon --stop --pidfile $work/sexton.pid"
  # libslack returns before its client necessarily runs: wait for the
  # client's pid to exist (counted in its start time, to be fair).
  measure libslack \
    "daemon -r --name=sexton-bench --pidfiles=$work -- sleep 100000; wait_for $work/sexton-bench.clientpid" \
    "head -n1 $work/sexton-bench.pid" \
    "daemon --name=sexton-bench --pidfiles=$work --stop; wait_gone $work/sexton-bench.pid"
done

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
col() { awk -v c="$2" '{ print $c }' "$work/$1" | median; }

s_rss=$(col sexton 1) s_pss=$(col sexton 2) s_wk=$(col sexton 3) s_ms=$(col sexton 4)
s_sh=$(col sexton-shared 1) l_sh=$(col libslack-shared 1)
l_rss=$(col libslack 1) l_pss=$(col libslack 2) l_wk=$(col libslack 3) l_ms=$(col libslack 4)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print (a == 0 ? "=" : "n/a"); else printf "%.2f", a / b }'; }

echo
echo "Monitor of an idle daemon (\`sleep\`), median of $ROUNDS rounds, idle window ${IDLE}s; $(uname -r), $(nproc) cores"
echo
echo "| | sexton daemon --respawn | daemon -r (libslack $(daemon --version 2>&1 | head -n1 | sed 's/daemon-//')) | sexton / libslack |"
echo "|---|---:|---:|---:|"
echo "| monitor processes | 2 (guard + worker) | 1 | |"
echo "| monitor RSS (KiB, summed) | $s_rss | $l_rss | $(ratio "$s_rss" "$l_rss") |"
echo "| monitor PSS (KiB, summed) | $s_pss | $l_pss | $(ratio "$s_pss" "$l_pss") |"
echo "| monitor PSS with 4 daemons running (KiB, each) | $s_sh | $l_sh | $(ratio "$s_sh" "$l_sh") |"
echo "| monitor wakeups in ${IDLE}s idle | $s_wk | $l_wk | $(ratio "$s_wk" "$l_wk") |"
echo "| start command returned (ms; sexton waits 200 ms to call a start good) | $s_ms | $l_ms | $(ratio "$s_ms" "$l_ms") |"
