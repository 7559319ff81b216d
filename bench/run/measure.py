#!/usr/bin/env python3
"""Measurement helpers for bench/run.sh (wall time, peak RSS, tree kill)."""
import json
import os
import select
import subprocess
import sys
import time


def rss(argv):
    """Runs argv, returns (seconds, peak RSS KiB of it and what it reaped)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    return time.monotonic() - t0, ru.ru_maxrss, os.waitstatus_to_exitcode(status)


def capture(n, argv_sets):
    out = {}
    for name, argv in argv_sets:
        runs = [rss(argv) for _ in range(n)]
        runs.sort()
        t, r, code = runs[len(runs) // 2]
        out[name] = {"seconds": t, "max_rss_kb": max(x[1] for x in runs), "code": code}
    return out


def treekill(label, argv, pidfile, readyfile, kill_phase, expect=500):
    """Runs argv (which starts bench/run/tree.sh), watches every pid of the
    tree through pidfds, and reports survivors and when the last died."""
    for f in (pidfile, readyfile):
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not os.path.exists(readyfile):
        if p.poll() is not None:
            break
        time.sleep(0.005)
    ready = time.monotonic() - t0
    # Escapees announce themselves after the ready mark: wait for all.
    end = time.monotonic() + 5
    while len(open(pidfile).read().split()) < expect and time.monotonic() < end:
        time.sleep(0.005)
    pids = [int(x) for x in open(pidfile).read().split()]
    fds = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except OSError:
            pass
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    last = None
    live = set(fds)
    deadline = t0 + kill_phase + 5.0
    while live and time.monotonic() < deadline:
        for fd, _ in poller.poll(50):
            if fd in live:
                live.discard(fd)
                poller.unregister(fd)
                last = time.monotonic() - t0
    p.wait()
    survivors = [fds[fd] for fd in live]
    for pid in survivors:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    for fd in fds:
        os.close(fd)
    return {
        "label": label,
        "processes": len(pids),
        "ready_s": ready,
        "survivors": len(survivors),
        "last_death_after_kill_ms": None if survivors or last is None else (last - kill_phase) * 1000,
        "returned_s": time.monotonic() - t0,
    }


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "capture":
        n = int(sys.argv[2])
        sets = json.loads(sys.argv[3])
        print(json.dumps(capture(n, sets)))
    elif cmd == "treekill":
        label, pidfile, readyfile, phase = sys.argv[2:6]
        print(json.dumps(treekill(label, sys.argv[6:], pidfile, readyfile, float(phase))))
