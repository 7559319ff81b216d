#!/usr/bin/env python3
"""Orphan storm: N double-forked orphans that all exit at the same moment.

usage: storm.py N DEADLINE_SECONDS

Each orphan is `cat` reading one shared pipe; its parent exits at once, so
it is adopted by the nearest subreaper or PID 1 (our own parent, when that
is an init). When all N are adopted the write end is closed: every cat
reads EOF and exits together, and their SIGCHLDs coalesce. Then the pids
are polled in /proc until none is left (reaped) or DEADLINE passes.

Prints one line:
  orphans=N adopted=A time_to_zero_ms=T zombies_left=Z alive_left=L max_zombies=M
time_to_zero_ms is -1 when the deadline passed first. The orphans that are
still there at the end are killed (zombies stay: only their parent can reap
them).
"""
import os
import struct
import sys
import time


def state_of(pid):
    """(state, ppid) from /proc/PID/stat, or None when the pid is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data[data.rindex(b")") + 2 :].split()
    return rest[0].decode(), int(rest[1])


def main():
    n = int(sys.argv[1])
    deadline_s = float(sys.argv[2])
    adopter = os.getppid()
    r, w = os.pipe()
    rep_r, rep_w = os.pipe()
    devnull = os.open("/dev/null", os.O_WRONLY)
    pids = []
    for _ in range(n):
        mid = os.fork()
        if mid == 0:
            kid = os.fork()
            if kid == 0:
                os.dup2(r, 0)
                os.dup2(devnull, 1)
                os.closerange(3, 1024)
                os.execv("/bin/cat", ["cat"])
            os.write(rep_w, struct.pack("i", kid))
            os._exit(0)
        os.waitpid(mid, 0)
        pids.append(struct.unpack("i", os.read(rep_r, 4))[0])
    adopted = 0
    for p in pids:
        st = state_of(p)
        if st is not None and st[1] == adopter:
            adopted += 1
    # Release: every cat sees EOF now.
    os.close(w)
    start = time.monotonic()
    left = pids
    max_z = 0
    t_zero = -1.0
    while True:
        still = []
        zombies = 0
        for p in left:
            st = state_of(p)
            if st is None:
                continue
            still.append(p)
            if st[0] == "Z":
                zombies += 1
        left = still
        max_z = max(max_z, zombies)
        now = time.monotonic()
        if not left:
            t_zero = (now - start) * 1000.0
            break
        if now - start >= deadline_s:
            break
    zombies_left = 0
    alive_left = 0
    for p in left:
        st = state_of(p)
        if st is None:
            continue
        if st[0] == "Z":
            zombies_left += 1
        else:
            alive_left += 1
            try:
                os.kill(p, 9)
            except ProcessLookupError:
                pass
    print(
        f"orphans={n} adopted={adopted} time_to_zero_ms={t_zero:.1f} "
        f"zombies_left={zombies_left} alive_left={alive_left} max_zombies={max_z}",
        flush=True,
    )


if __name__ == "__main__":
    main()
