#!/usr/bin/env bash
# sexton init against tini, dumb-init and catatonit, side by side, as PID 1
# of a fresh PID namespace (needs root for unshare --pid).
#
# 1. Orphan storm: N (default 10000) double-forked orphans exit at the same
#    moment (tests/helpers/storm.py); measured: time until /proc shows none
#    of them left (reaped), and zombies still there 2 s after the release.
#    Median of ROUNDS (default 3) runs per init.
# 2. Footprint: `INIT -- sleep 100` as PID 1: peak RSS (VmHWM), RSS, own
#    anonymous memory (RssAnon) and PSS (smaps_rollup).
#
# usage: bash bench/init.sh [N] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
ROUNDS=${2:-3}

need=()
for p in tini dumb-init catatonit; do command -v "$p" >/dev/null || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q
SEXTON=${CARGO_TARGET_DIR:-$PWD/target}/${CARGO_BUILD_TARGET:-x86_64-unknown-linux-musl}/release/sexton
STORM=$PWD/tests/helpers/storm.py

names=("sexton init" "tini" "dumb-init" "catatonit")
# How each init is invoked before the program's argv.
cmd_of() {
  case "$1" in
    "sexton init") echo "$SEXTON init --" ;;
    tini) echo "tini --" ;;
    dumb-init) echo "dumb-init" ;;
    catatonit) echo "catatonit --" ;;
  esac
}

median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) print "nan"; else print a[int((NR+1)/2)] }'; }

declare -A TTZ LEFT HWM RSS ANON PSS ROUNDS_OF
for name in "${names[@]}"; do
  # shellcheck disable=SC2046
  read -r -a init <<<"$(cmd_of "$name")"
  times=()
  left=0
  for r in $(seq "$ROUNDS"); do
    line=$(unshare --pid --fork --mount-proc --kill-child "${init[@]}" python3 "$STORM" "$N" 2 | grep '^orphans=')
    t=$(sed -E 's/.*time_to_zero_ms=([-0-9.]+).*/\1/' <<<"$line")
    z=$(sed -E 's/.*zombies_left=([0-9]+).*/\1/' <<<"$line")
    a=$(sed -E 's/.*adopted=([0-9]+).*/\1/' <<<"$line")
    [ "$a" = "$N" ] || { echo "$name: only $a of $N orphans adopted" >&2; exit 1; }
    times+=("$t")
    [ "$z" -gt "$left" ] && left=$z
    echo "  $name round $r: $line" >&2
  done
  # A round that did not reach zero by the deadline (-1) counts as slower
  # than any other in the median.
  TTZ[$name]=$(printf '%s\n' "${times[@]}" | sed 's/^-1.*/999999/' | median | sed 's/^999999$/never (>2000)/')
  # Every round, fastest first, since one round can differ from the next
  # by 10x on a small machine.
  ROUNDS_OF[$name]=$(printf '%s\n' "${times[@]}" | sed 's/^-1.*/999999/' | sort -g | awk '{printf "%s%s", (NR>1?", ":""), ($1=="999999"?">2000":$1)}')
  LEFT[$name]=$left

  # Footprint as PID 1, idle with one child. sexton's long-lived
  # processes give back their start-up pages (src/idle.rs), which also
  # drops the binary's pages nothing else maps from the page cache: read
  # it back first, so every peak is measured from a warm cache.
  cat "$SEXTON" >/dev/null
  unshare --pid --fork --mount-proc --kill-child "${init[@]}" sleep 100 &
  u=$!
  pid=""
  for _ in $(seq 200); do
    pid=$(pgrep -P "$u" | head -1 || true)
    if [ -n "$pid" ] && pgrep -P "$pid" -x sleep >/dev/null; then break; fi
    sleep 0.05
  done
  HWM[$name]=$(awk '/^VmHWM/{print $2}' "/proc/$pid/status")
  RSS[$name]=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")
  ANON[$name]=$(awk '/^RssAnon/{print $2}' "/proc/$pid/status")
  PSS[$name]=$(awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup")
  kill -KILL "$u" 2>/dev/null || true
  wait "$u" 2>/dev/null || true
done

best_peer() { # column name -> smallest value among the peers
  local -n col=$1
  printf '%s\n' "${col[tini]}" "${col[dumb-init]}" "${col[catatonit]}" | grep -E '^[0-9.]+$' | sort -g | head -1
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a ~ /^[0-9.]+$/ && b+0 > 0) printf "%.2f", a/b; else print "-" }'; }

bt=$(best_peer TTZ); bh=$(best_peer HWM); bp=$(best_peer PSS); ba=$(best_peer ANON)
echo
echo "$N orphans exiting at once, PID 1 of a new PID namespace, median of $ROUNDS; $(nproc) cores, kernel $(uname -r)"
echo
echo "| init | time to zero zombies, median (ms) | every round (ms) | zombies left after 2 s | peak RSS (KiB) | RSS (KiB) | anon (KiB) | PSS (KiB) |"
echo "|---|---|---|---|---|---|---|---|"
for name in "${names[@]}"; do
  echo "| $name | ${TTZ[$name]} | ${ROUNDS_OF[$name]} | ${LEFT[$name]} | ${HWM[$name]} | ${RSS[$name]} | ${ANON[$name]} | ${PSS[$name]} |"
done
echo "| sexton / best peer | $(ratio "${TTZ[sexton init]}" "$bt") | | | $(ratio "${HWM[sexton init]}" "$bh") | | $(ratio "${ANON[sexton init]}" "$ba") | $(ratio "${PSS[sexton init]}" "$bp") |"
