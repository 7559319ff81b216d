#!/usr/bin/env bash
# `sexton up -d` against supervisord and runit, side by side in one run,
# each supervising the same N (default 100) services `sleep 1000`:
#
# 1. Start: time from the start command to all N `sleep 1000` running
#    (a /proc poll), and when the start command returned (`sexton up -d`
#    returns once every service is up; supervisord returns once it has
#    daemonized; runsvdir stays in the foreground).
# 2. Footprint of the supervisor's own processes, never the services':
#    sexton's guard (the pid `sexton status --json` names) and its worker;
#    the supervisord process; runsvdir and its N runsv. How many, and the
#    sum of their RSS, PSS and anonymous memory (/proc/PID/smaps_rollup),
#    after the idle window.
# 3. Wakeups while idle: voluntary + involuntary context switches of those
#    processes (every thread) over IDLE seconds once everything is up.
# 4. Stop: time from the stop command (`sexton down`, `supervisorctl
#    shutdown`, SIGHUP to runsvdir) until no `sleep 1000` is left, and how
#    many were left at the deadline. Then a fresh start, SIGKILL of the
#    supervisor's pid (sexton's guard, supervisord, runsvdir) and the
#    `sleep 1000` still alive 2 s later (they are killed afterwards).
#
# Each supervisor gets its own config in a temporary folder (supervisord
# with its own socket, pidfile and logs; runsvdir on its own service
# folder), never the system's. The services carry a token in their
# environment, so that only this run's `sleep 1000` are counted. Every
# wait is a /proc poll with a deadline. Prints a markdown table of the
# medians over ROUNDS rounds (leftovers: the most of any round) and
# whether sexton meets the targets: N services up within 1 s, its
# processes at most 5 MiB RSS together, at most 2 wakeups in 10 s idle.
#
#   bash bench/supervisor.sh               # 100 services, idle 10 s, 3 rounds
#   IDLE=30 ROUNDS=5 N=100 DEADLINE=30 bash bench/supervisor.sh
#
# Installs supervisor and runit with apt-get when missing (without
# starting the distribution's own supervisord or runsvdir), and builds
# sexton with `cargo build --release` (CARGO_TARGET_DIR is honoured).
set -euo pipefail
cd "$(dirname "$0")/.."

IDLE=${IDLE:-10}
ROUNDS=${ROUNDS:-3}
N=${N:-100}
DEADLINE=${DEADLINE:-30}

say() { echo "bench: $*" >&2; }

# supervisord and runsvdir processes already running (the system's, or
# anybody's): the install must not add one.
system_daemons() { pgrep -x supervisord || true; pgrep -x runsvdir || true; }

need=()
command -v supervisord >/dev/null 2>&1 && command -v supervisorctl >/dev/null 2>&1 || need+=(supervisor)
command -v runsvdir >/dev/null 2>&1 && command -v runsv >/dev/null 2>&1 || need+=(runit)
if [ ${#need[@]} -gt 0 ]; then
  before=$(system_daemons)
  # policy-rc.d answering 101 keeps invoke-rc.d and deb-systemd-invoke
  # from starting the packages' services; ours is removed right after.
  policy=/usr/sbin/policy-rc.d
  made_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  # --no-install-recommends: runit recommends runit-run, which would set
  # up /etc/service and a runsvdir service for it.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  if [ -n "$made_policy" ]; then
    rm -f "$policy"
    trap - EXIT
  fi
  # Should a package have started its daemon anyway, stop it again.
  for pid in $(system_daemons); do
    grep -qx "$pid" <<<"$before" && continue
    say "the install started $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null); stopping it"
    if [ -d /run/systemd/system ]; then
      systemctl stop supervisor.service runit.service 2>/dev/null || true
    fi
    case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
      runsvdir) kill -HUP "$pid" 2>/dev/null || true ;;
      *) kill -TERM "$pid" 2>/dev/null || true ;;
    esac
  done
fi

cargo build --release -q
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$PWD/$target ;; esac
SEXTON=$target/${CARGO_BUILD_TARGET:-x86_64-unknown-linux-musl}/release/sexton

work=$(mktemp -d)
token="sexton-bench-$(basename "$work")"
probe() { python3 "$work/probe.py" "$@"; }

cleanup() {
  set +e
  trap - EXIT INT TERM
  local d p
  for d in "$work"/sexton/state-*; do
    [ -S "$d/control.sock" ] && timeout 20 "$SEXTON" down --state-dir "$d" >/dev/null 2>&1
  done
  [ -S "$work/supervisord/supervisor.sock" ] &&
    timeout 20 supervisorctl -c "$work/supervisord/supervisord.conf" shutdown >/dev/null 2>&1
  # Whatever is still alive of this run (supervisors and services all
  # carry the token) is killed by pid.
  if [ -f "$work/probe.py" ]; then
    local pids
    read -ra pids <<<"$(probe pids "$token")"
    for p in "${pids[@]}"; do
      [ "$(cat "/proc/$p/comm" 2>/dev/null)" = runsvdir ] && kill -HUP "$p" 2>/dev/null
    done
    probe gone 10 "${pids[@]}" >/dev/null
    read -ra pids <<<"$(probe pids "$token")"
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat >"$work/probe.py" <<'PY'
# /proc reader for bench/supervisor.sh.
import os, subprocess, sys, time

SLEEP = b"sleep\x001000\x00"

def environ_has(pid, tok):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return tok in f.read().split(b"\0")
    except OSError:
        return False

def services(token):
    """pids of the live `sleep 1000` carrying the token (a zombie has no cmdline)."""
    tok = b"BENCH_TOKEN=" + token.encode()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if f.read() != SLEEP:
                    continue
        except OSError:
            continue
        if environ_has(d, tok):
            found.append(int(d))
    return found

def alive(pid):
    """Exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

def ctxt(pids):
    n = 0
    for pid in pids:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        n += int(line.split()[1])
    return n

def rollup(pid, key):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0

def run(args):
    # run up|down WANT DEADLINE_S TOKEN DETACH LOG -- CMD...
    # Starts CMD (with BENCH_TOKEN in its environment) and polls /proc until
    # the token's `sleep 1000` are at least (up) or at most (down) WANT, and
    # CMD has returned (unless DETACH). Prints "cond_ms ret_ms count rc pid
    # scan_ms", -1 for what did not happen before the deadline.
    mode, want, deadline, token, detach, log = args[:6]
    assert args[6] == "--"
    cmd = args[7:]
    want, deadline, detach = int(want), float(deadline), detach == "1"
    env = dict(os.environ, BENCH_TOKEN=token)
    out = open(log, "ab")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                         start_new_session=detach)
    t_cond = t_ret = None
    rc = -1
    n = -1
    scans = 0
    while True:
        if t_ret is None and not detach and p.poll() is not None:
            t_ret, rc = time.monotonic(), p.returncode
        if t_cond is None:
            n = len(services(token))
            scans += 1
            if (n >= want) if mode == "up" else (n <= want):
                t_cond = time.monotonic()
        if t_cond is not None and (detach or t_ret is not None):
            break
        if time.monotonic() - t0 > deadline:
            break
        time.sleep(0.005)
    if not detach and t_ret is None:
        p.kill()
        p.wait()
    ms = lambda t: -1 if t is None else round((t - t0) * 1000)
    # The condition is seen at the end of a scan: late by at most the time
    # from one scan to the next, printed last.
    every = (time.monotonic() if t_cond is None else t_cond) - t0
    print(ms(t_cond), ms(t_ret), n, rc, p.pid, round(every * 1000 / scans, 1))

def main():
    what, args = sys.argv[1], sys.argv[2:]
    if what == "run":
        run(args)
    elif what == "count":  # count TOKEN
        print(len(services(args[0])))
    elif what == "services":  # services TOKEN
        print(" ".join(map(str, services(args[0]))))
    elif what == "pids":  # pids TOKEN: every live process carrying it
        tok = b"BENCH_TOKEN=" + args[0].encode()
        me = os.getpid()
        print(" ".join(d for d in os.listdir("/proc")
                       if d.isdigit() and int(d) != me and alive(d) and environ_has(d, tok)))
    elif what == "gone":  # gone DEADLINE PID...: until none is alive; prints those left
        pids, t0 = args[1:], time.monotonic()
        while True:
            left = [p for p in pids if alive(p)]
            if not left or time.monotonic() - t0 > float(args[0]):
                break
            time.sleep(0.01)
        print(" ".join(left))
    elif what == "pidfile":  # pidfile PATH DEADLINE: until it names a live process
        t0 = time.monotonic()
        while time.monotonic() - t0 < float(args[1]):
            try:
                pid = open(args[0]).read().split()[0]
                if alive(pid):
                    print(pid)
                    return
            except (OSError, IndexError):
                pass
            time.sleep(0.01)
        sys.exit(f"bench: {args[0]} never named a running process")
    elif what == "idle":  # idle SECONDS PID...: context switches over the window
        pids = args[1:]
        a = ctxt(pids)
        time.sleep(float(args[0]))
        b = ctxt(pids)
        dead = [p for p in pids if not alive(p)]
        if dead:
            sys.exit(f"bench: {' '.join(dead)} ended during the idle window")
        print(b - a)
    elif what == "mem":  # mem PID...: "count rss pss anonymous each_rss" (KiB, sums)
        pids = args
        rss = [rollup(p, "Rss") for p in pids]
        print(len(pids), sum(rss), sum(rollup(p, "Pss") for p in pids),
              sum(rollup(p, "Anonymous") for p in pids), ",".join(map(str, rss)))

main()
PY

# --- the three set-ups -------------------------------------------------------
mkdir -p "$work/sexton" "$work/supervisord/logs" "$work/runit/service"
for i in $(seq "$N"); do
  printf '[services.s%d]\ncommand = "sleep 1000"\n\n' "$i"
done >"$work/sexton/sexton.toml"

sd=$work/supervisord
{
  cat <<EOF
[supervisord]
logfile=$sd/supervisord.log
pidfile=$sd/supervisord.pid
childlogdir=$sd/logs

[unix_http_server]
file=$sd/supervisor.sock
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$sd/supervisor.sock
EOF
  for i in $(seq "$N"); do
    printf '\n[program:s%d]\ncommand=sleep 1000\n' "$i"
  done
} >"$sd/supervisord.conf"

for i in $(seq "$N"); do
  mkdir "$work/runit/service/s$i"
  printf '#!/bin/sh\nexec sleep 1000\n' >"$work/runit/service/s$i/run"
  chmod 755 "$work/runit/service/s$i/run"
done

# --- one round of one supervisor ---------------------------------------------
# Each start_X sets SUP (the pid SIGKILL goes to) and PROCS (all of the
# supervisor's own processes), and leaves the probe's start line in START.
state=""
start_sexton() {
  state=$work/sexton/state-$1
  START=$(probe run up "$N" "$DEADLINE" "$token" 0 "$work/sexton.out" -- \
    "$SEXTON" up -d -f "$work/sexton/sexton.toml" --state-dir "$state")
  SUP=$("$SEXTON" status --json --state-dir "$state" | sed -n 's/^{"supervisor": *\([0-9]*\).*/\1/p')
  [ -n "$SUP" ] || { say "sexton status --json named no supervisor"; exit 1; }
  read -ra PROCS <<<"$SUP $(pgrep -P "$SUP" -x sexton | tr '\n' ' ' || true)"
}
stop_sexton() {
  probe run down 0 "$DEADLINE" "$token" 0 "$work/sexton.out" -- "$SEXTON" down --state-dir "$state"
}

start_supervisord() {
  rm -f "$sd/supervisord.pid" "$sd/supervisor.sock"
  START=$(probe run up "$N" "$DEADLINE" "$token" 0 "$work/supervisord.out" -- supervisord -c "$sd/supervisord.conf")
  SUP=$(probe pidfile "$sd/supervisord.pid" "$DEADLINE")
  PROCS=("$SUP")
}
stop_supervisord() {
  probe run down 0 "$DEADLINE" "$token" 0 "$work/supervisord.out" -- supervisorctl -c "$sd/supervisord.conf" shutdown
}

start_runit() {
  rm -rf "$work"/runit/service/*/supervise
  START=$(probe run up "$N" "$DEADLINE" "$token" 1 "$work/runit.out" -- runsvdir "$work/runit/service")
  SUP=$(awk '{ print $5 }' <<<"$START")
  read -ra PROCS <<<"$SUP $(pgrep -P "$SUP" -x runsv | tr '\n' ' ' || true)"
}
stop_runit() {
  # SIGHUP: runsvdir sends TERM to every runsv and exits; each runsv stops
  # its service (TERM, CONT) and exits once it is down.
  probe run down 0 "$DEADLINE" "$token" 0 "$work/runit.out" -- kill -HUP "$SUP"
}

# After a SIGKILL test: the services still alive and what is left of the
# supervisor are killed (runsv first asked with TERM: it stops its service).
reap_after_kill() {
  local p pids left
  for p in "${PROCS[@]}"; do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = runsv ] && kill -TERM "$p" 2>/dev/null
  done
  probe gone 10 "${PROCS[@]}" >/dev/null
  read -ra pids <<<"$(probe pids "$token")"
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  left=$(probe gone "$DEADLINE" "${PROCS[@]}" "${pids[@]}")
  [ -z "$left" ] || { say "still alive after SIGKILL: $left"; exit 1; }
}

# one NAME ROUND: appends to $work/res-NAME
# up_ms ret_ms procs rss pss anon each_rss wakeups stop_ms stop_left kill_left
# kill_ms scan_ms
one() {
  local name=$1 r=$2 up ret nup rc scan wk mem each stop_ms stop_left kill_ms kill_left left
  "start_$name" "$r"
  read -r up ret nup rc _ scan <<<"$START"
  [ "$up" != -1 ] || say "$name: only $nup of $N services running after ${DEADLINE}s"
  [ "$rc" = 0 ] || [ "$name" = runit ] || say "$name: start command exited with $rc"
  wk=$(probe idle "$IDLE" "${PROCS[@]}")
  mem=$(probe mem "${PROCS[@]}")
  each=${mem##* }
  mem=${mem% *}
  read -r stop_ms _ stop_left _ <<<"$("stop_$name")"
  left=$(probe gone "$DEADLINE" "${PROCS[@]}")
  [ -z "$left" ] || say "$name: own processes $left still alive ${DEADLINE}s after the stop"
  "start_$name" "$r-kill"
  read -r kill_ms _ kill_left _ <<<"$(probe run down 0 2 "$token" 0 /dev/null -- kill -KILL "$SUP")"
  reap_after_kill
  echo "$up $ret $mem $each $wk $stop_ms $stop_left $kill_left $kill_ms $scan" >>"$work/res-$name"
  say "$name round $r: up ${up} ms (polled every $scan ms; returned ${ret} ms), procs/RSS/PSS/anon $mem, wakeups $wk, stop ${stop_ms} ms (left $stop_left), left after SIGKILL $kill_left"
}

names=(sexton supervisord runit)
for r in $(seq "$ROUNDS"); do
  for name in "${names[@]}"; do one "$name" "$r"; done
done

# --- the table -----------------------------------------------------------------
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "nan") }'; }
max() { sort -g | tail -n1; }
# A timed-out round (-1) counts as slower than any other.
col() { awk -v c="$2" '{ print ($c == -1 ? 999999999 : $c) }' "$work/res-$1" | "${3:-median}" | sed 's/^999999999$/timeout/'; }
rounds() { awk -v c="$2" '{ print ($c == -1 ? "timeout" : $c) }' "$work/res-$1" | paste -sd, | sed 's/,/, /g'; }

declare -A UP RET NP RSS PSS ANON WK STOP SLEFT KLEFT KMS SCAN
# shellcheck disable=SC2034 # read through the nameref in row()
for n in "${names[@]}"; do
  UP[$n]=$(col "$n" 1); RET[$n]=$(col "$n" 2); NP[$n]=$(col "$n" 3)
  RSS[$n]=$(col "$n" 4); PSS[$n]=$(col "$n" 5); ANON[$n]=$(col "$n" 6); WK[$n]=$(col "$n" 8)
  STOP[$n]=$(col "$n" 9); SLEFT[$n]=$(col "$n" 10 max); KLEFT[$n]=$(col "$n" 11 max)
  KMS[$n]=$(col "$n" 12 | sed 's/^timeout$/not within 2 s/'); SCAN[$n]=$(col "$n" 13)
done
RET[runit]="- (foreground)"
row() { # row TITLE ARRAY
  local -n a=$2
  echo "| $1 | ${a[sexton]} | ${a[supervisord]} | ${a[runit]} |"
}

echo
echo "Produced by \`IDLE=$IDLE ROUNDS=$ROUNDS N=$N bash bench/supervisor.sh\`"
echo
echo "$N services \`sleep 1000\`, median of $ROUNDS rounds (leftovers: the most of any round), idle window ${IDLE}s; $(uname -sr), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| | sexton up -d | supervisord $(supervisord --version 2>/dev/null) | runit (runsvdir + runsv) |"
echo "|---|---:|---:|---:|"
row "start to all $N running (ms)" UP
row "start command returned (ms)" RET
row "supervisor processes" NP
row "their RSS, summed (KiB)" RSS
row "their PSS, summed (KiB)" PSS
row "their anonymous memory, summed (KiB)" ANON
row "their wakeups in ${IDLE}s idle" WK
row "stop to no service left (ms)" STOP
row "services left after the stop" SLEFT
row "services alive 2 s after SIGKILL of the supervisor" KLEFT
row "SIGKILL of the supervisor to no service left (ms)" KMS
echo
echo "Stop commands: \`sexton down\`; \`supervisorctl shutdown\`; SIGHUP to runsvdir."
echo "SIGKILL went to: sexton's guard (the pid \`sexton status\` names); supervisord; runsvdir."
echo "The /proc poll is late by at most its period: a scan every ${SCAN[sexton]} / ${SCAN[supervisord]} / ${SCAN[runit]} ms (median) while starting."
echo "sexton's start to all running, every round (ms): $(rounds sexton 1); up -d returned: $(rounds sexton 2)"
echo "sexton's RSS per process (guard, worker), every round (KiB): $(awk '{ print $7 }' "$work/res-sexton" | paste -sd' ')"
echo

verdict() { awk -v v="$1" -v lim="$2" 'BEGIN { if (v ~ /^[0-9.]+$/ && v + 0 <= lim + 0) print "met"; else print "missed" }'; }
up_worst=$(col sexton 2 max)
echo "Targets for sexton:"
echo "- $N services all up within 1 s: $(verdict "$up_worst" 1000) (\`up -d\` returned after ${RET[sexton]} ms median, ${up_worst} ms in the slowest round; all running after ${UP[sexton]} ms)"
rss_verdict=$(verdict "${RSS[sexton]}" 5120)
rss_over=$(awk -v v="${RSS[sexton]}" 'BEGIN { if (v > 5120) printf " (%d KiB over, %.0f%%)", v - 5120, (v - 5120) * 100 / 5120 }')
echo "- its processes at most 5 MiB (5120 KiB) RSS together: $rss_verdict (${RSS[sexton]} KiB median for ${NP[sexton]} processes$rss_over; PSS ${PSS[sexton]} KiB, anonymous ${ANON[sexton]} KiB)"
wk10=$(awk -v w="${WK[sexton]}" -v i="$IDLE" 'BEGIN { printf "%g", w * 10 / i }')
echo "- at most 2 wakeups in 10 s idle: $(verdict "$wk10" 2) (${WK[sexton]} in ${IDLE}s)"
