#!/usr/bin/env python3
"""Runs a command as a child subreaper and reports what it left behind.

usage: subreaper.py REPORT CMD [ARGS...]

The command inherits stdio. Once it has exited, every process that was
reparented to this one (orphans and unreaped zombies the command left)
is listed in REPORT as JSON, then killed and reaped, so nothing survives
the check. Being a subreaper is process-wide state, which is why this
runs in its own process and not inside the test harness.
"""
import ctypes
import json
import os
import signal
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def children():
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == me:
            out.append({"pid": int(name), "state": fields[0], "comm": comm,
                        "cmdline": cmd})
    return out


def main():
    report, argv = sys.argv[1], sys.argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("subreaper.py: prctl failed")
    proc = subprocess.Popen(argv)
    status = proc.wait()
    left = children()
    with open(report, "w") as f:
        json.dump({"status": status, "children": left}, f)
    for c in left:
        try:
            os.kill(c["pid"], signal.SIGKILL)
        except OSError:
            pass
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    sys.exit(0)


main()
