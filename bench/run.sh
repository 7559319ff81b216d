#!/usr/bin/env bash
# Benchmarks of `sexton run` against its peers, side by side in one run:
# spawn overhead, forwarding throughput, capture cost, tree kill.
# Prints markdown tables with ratios. Usage: bash bench/run.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
here=bench/run
quick=${1:-}

need=()
for c in hyperfine:hyperfine python3:python3 perl:perl setsid:util-linux timeout:coreutils tini:tini dumb-init:dumb-init catatonit:catatonit; do
  command -v "${c%%:*}" >/dev/null 2>&1 || need+=("${c#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q
S=${CARGO_TARGET_DIR:-$PWD/target}/${CARGO_BUILD_TARGET:-x86_64-unknown-linux-musl}/release/sexton
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

runs=1000; fwd_runs=5; cap_runs=3
if [ "$quick" = --quick ]; then runs=200; fwd_runs=2; cap_runs=1; fi

echo "# sexton run benchmarks"
echo
echo "$(uname -sr), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo

# 1. Spawn overhead --------------------------------------------------------
hyperfine -N --warmup 50 --runs "$runs" --export-json "$tmp/spawn.json" \
  "$S run -- true" \
  "$S run --tracking subreaper -- true" \
  "$S run --timeout 10 -- true" \
  "timeout 10 true" \
  "tini -s -- true" \
  "dumb-init true" \
  "catatonit -- true" \
  "true" >/dev/null 2>&1
python3 - "$tmp/spawn.json" "$S" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
S = sys.argv[2]
med = {r["command"]: r["median"] * 1000 for r in res}
base = med["timeout 10 true"]
def p10(r):
    t = sorted(r["times"])
    return t[len(t) // 10] * 1000
fast = {r["command"]: p10(r) for r in res}
fbase = fast["timeout 10 true"]
print("## Spawn overhead (hyperfine -N; median, and 10th percentile as the less noisy figure)\n")
print("| command | median ms | vs `timeout 10 true` | p10 ms | vs `timeout 10 true` |")
print("|---|---:|---:|---:|---:|")
for r in res:
    name = r["command"].replace(S, "sexton")
    c = r["command"]
    print(f"| `{name}` | {med[c]:.2f} | {med[c]/base:.2f}x | {fast[c]:.2f} | {fast[c]/fbase:.2f}x |")
print()
PY

# 2. Forwarding --------------------------------------------------------------
hyperfine --warmup 1 --runs "$fwd_runs" --export-json "$tmp/fwd.json" \
  "$S run -- head -c 2G /dev/zero | cat >/dev/null" \
  "head -c 2G /dev/zero | cat >/dev/null" \
  "head -c 2G /dev/zero | cat | cat >/dev/null" >/dev/null 2>&1
python3 - "$tmp/fwd.json" "$S" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
S = sys.argv[2]
gib = 2.0
# The direct pipe is the two-process pipeline; the extra `cat` hop is the
# cheapest relay any forwarder can be (one more process on the path).
direct = [r for r in res if r["command"] == "head -c 2G /dev/zero | cat >/dev/null"][0]["median"]
print("## Forwarding 2 GiB through a pipe (hyperfine, median)\n")
print("| command | median s | GiB/s | vs direct pipe |")
print("|---|---:|---:|---:|")
for r in res:
    name = r["command"].replace(S, "sexton").replace("|", "\\|")
    print(f"| `{name}` | {r['median']:.3f} | {gib/r['median']:.2f} | {direct/r['median']:.2f}x |")
print()
PY

# 3. Capture -----------------------------------------------------------------
python3 $here/measure.py capture "$cap_runs" "$(python3 -c '
import json, sys
S = sys.argv[1]
print(json.dumps([
 ["sexton run --json --output-limit 1MiB -- head -c 1G /dev/zero",
  [S, "run", "--json", "--output-limit", "1MiB", "--", "head", "-c", "1G", "/dev/zero"]],
 ["python3 subprocess.run(capture_output=True)",
  ["python3", "-c", "import subprocess; subprocess.run([\"head\", \"-c\", \"1G\", \"/dev/zero\"], capture_output=True)"]],
]))' "$S")" > "$tmp/cap.json"
python3 - "$tmp/cap.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
names = list(d)
py = d[names[1]]
print("## Capturing 1 GiB of output (median wall time, peak RSS)\n")
print("| command | seconds | vs python | peak RSS KiB | vs python |")
print("|---|---:|---:|---:|---:|")
for n in names:
    r = d[n]
    print(f"| `{n}` | {r['seconds']:.3f} | {r['seconds']/py['seconds']:.2f}x | {r['max_rss_kb']} | {r['max_rss_kb']/py['max_rss_kb']:.3f}x |")
print()
PY

# 4. Tree kill -----------------------------------------------------------------
pf=$tmp/pids; rf=$tmp/ready
{
  python3 $here/measure.py treekill "sexton run --timeout 1 -k 1 (cgroup)" "$pf" "$rf" 2 \
    "$S" run --tracking cgroup --timeout 1 -k 1 -- $here/tree.sh "$pf" "$rf"
  python3 $here/measure.py treekill "sexton run --timeout 1 -k 1 (subreaper)" "$pf" "$rf" 2 \
    "$S" run --tracking subreaper --timeout 1 -k 1 -- $here/tree.sh "$pf" "$rf"
  python3 $here/measure.py treekill "timeout -k 1 1" "$pf" "$rf" 2 \
    timeout -k 1 1 $here/tree.sh "$pf" "$rf"
} > "$tmp/tree.jsonl"
python3 - "$tmp/tree.jsonl" <<'PY'
import json, sys
print("## Killing a 500-process tree (plain, other groups, 50 setsid escapees, 198 ignoring TERM)\n")
print("| command | processes | survivors | last death after SIGKILL phase start | returned after |")
print("|---|---:|---:|---:|---:|")
for line in open(sys.argv[1]):
    r = json.loads(line)
    last = "-" if r["last_death_after_kill_ms"] is None else f"{r['last_death_after_kill_ms']:.0f} ms"
    print(f"| `{r['label']}` | {r['processes']} | {r['survivors']} | {last} | {r['returned_s']:.2f} s |")
print()
PY
echo "Produced by: bash bench/run.sh"
