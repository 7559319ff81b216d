#!/usr/bin/env bash
# Benchmark: `sexton audit --json` against lsof and psutil, with 3000
# extra processes on the machine, all in one run. Prints a markdown table
# of medians with ratios to `lsof -n -P`.
#
#   bash bench/audit.sh            # 3000 extra processes, 10 runs each
#   EXTRA=1000 RUNS=5 bash bench/audit.sh
set -euo pipefail
cd "$(dirname "$0")/.."

EXTRA=${EXTRA:-3000}
RUNS=${RUNS:-10}

# Every tool is timed in a private PID namespace with its own /proc, so
# the process count is the benchmark's own (3000 extra + a handful)
# whatever else the machine runs. NO_NS=1 measures the whole machine.
if [ -z "${NO_NS:-}" ] && [ -z "${IN_NS:-}" ] && unshare --pid --fork --mount-proc true 2>/dev/null; then
  exec env IN_NS=1 unshare --pid --fork --mount-proc --kill-child bash "$0" "$@"
fi

need=()
command -v lsof >/dev/null || need+=(lsof)
command -v hyperfine >/dev/null || need+=(hyperfine)
/usr/bin/python3 -c 'import psutil' 2>/dev/null || need+=(python3-psutil)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --release -q

# Whatever fds the caller's shell leaked to us must not reach the extra
# processes (they would all share them, which is a finding of its own).
for f in /proc/$$/fd/*; do
  n=${f##*/}
  if [ "$n" -gt 2 ] && [ "$n" != 255 ]; then eval "exec $n>&-" 2>/dev/null || true; fi
done
SEXTON=${CARGO_TARGET_DIR:-$PWD/target}/${CARGO_BUILD_TARGET:-x86_64-unknown-linux-musl}/release/sexton
work=$(mktemp -d)

# The extra processes: sleeps with a file on stdout and a pipe (shared by
# all of them, as a service's log stream is) on stderr.
pids=()
cleanup() {
  [ ${#pids[@]} -gt 0 ] && kill -9 "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
exec 6> >(cat >/dev/null)
for ((i = 0; i < EXTRA; i++)); do
  sleep 600 </dev/null >"$work/held" 2>&6 6>&- &
  pids+=($!)
done
exec 6>&-

cat >"$work/psutil_fds.py" <<'PY'
import psutil
n = 0
for p in psutil.process_iter():
    try:
        conns = getattr(p, "net_connections", None) or p.connections
        n += len(p.open_files()) + len(conns(kind="all"))
        p.num_fds()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        pass
print(n)
PY

all=(/proc/[0-9]*); procs=${#all[@]}
echo "processes visible: $procs (cores: $(nproc), own PID namespace: ${IN_NS:-no})" >&2
hyperfine -N -i --warmup 2 --runs "$RUNS" --export-json "$work/h.json" \
  -n "sexton audit --json" "$SEXTON audit --json" \
  -n "lsof -n -P" "lsof -n -P" \
  -n "lsof -n -P -U" "lsof -n -P -U" \
  -n "psutil (every fd)" "/usr/bin/python3 $work/psutil_fds.py" \
  -n "ps -eo stat,pid,ppid" "ps -eo stat,pid,ppid" >&2 || true

/usr/bin/python3 - "$work/h.json" "$procs" <<'PY'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
lsof = res["lsof -n -P"]["median"]
ps = res["ps -eo stat,pid,ppid"]["median"]
print(f"\n{sys.argv[2]} processes visible, median of {len(res['lsof -n -P']['times'])} runs (hyperfine -N)\n")
print("| command | median | vs `lsof -n -P` | vs `ps -eo stat,pid,ppid` |")
print("|---|---:|---:|---:|")
for name, r in res.items():
    m = r["median"]
    print(f"| `{name}` | {m*1000:.1f} ms | {m/lsof:.2f}x | {m/ps:.2f}x |")
PY
