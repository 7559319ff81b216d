#!/usr/bin/env python3
"""A deliberately naive init: the negative control for the reaping tests.

usage: naive_init.py pause|waitpid PROGRAM [ARGS...]

Written the way a handler-based init often is. It becomes a child
subreaper, starts PROGRAM, and reaps from a SIGCHLD handler with a single
waitpid(-1, WNOHANG) per signal, noting PROGRAM's status when that is the
child it got; TERM, INT, HUP, WINCH and URG are forwarded to PROGRAM by
handlers. Then:

  pause    the main path sleeps in pause() until the handler has noted
           PROGRAM's status. SIGCHLDs that coalesce (several children
           exiting before the handler runs) reap one child: the others
           stay zombies until some later SIGCHLD.
  waitpid  the main path waits for PROGRAM with waitpid(2) called straight
           through libc, as C does (Python's own os.waitpid would retry
           EINTR for us). The handlers are installed without SA_RESTART,
           as Python does, so a signal arriving meanwhile makes it fail
           with EINTR, and PROGRAM's status is lost.

Exits with PROGRAM's status, or 1 (after a line on stderr) when it lost
it, as soon as PROGRAM is reaped: zombies not reaped by then are left to
whoever adopts them.
"""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36

libc = ctypes.CDLL(None, use_errno=True)
mode = sys.argv[1]
if mode not in ("pause", "waitpid"):
    sys.exit(f"naive_init: unknown mode {mode}")
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit(f"naive_init: prctl: {os.strerror(ctypes.get_errno())}")

status = None
program = 0  # set once forked; no signal is sent before that


def on_chld(_signum, _frame):
    global status
    if program <= 0:
        return
    try:
        pid, st = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return
    if pid == program:
        status = st


def forward(signum, _frame):
    if program <= 0:
        return
    try:
        os.kill(program, signum)
    except ProcessLookupError:
        pass


# Handlers first, so that no SIGCHLD of PROGRAM's can come before them.
signal.signal(signal.SIGCHLD, on_chld)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGWINCH, signal.SIGURG):
    signal.signal(s, forward)
program = os.fork()
if program == 0:
    for s in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
              signal.SIGWINCH, signal.SIGURG):
        signal.signal(s, signal.SIG_DFL)
    os.execvp(sys.argv[2], sys.argv[2:])

if mode == "pause":
    while status is None:
        signal.pause()
else:
    raw = ctypes.c_int(0)
    if libc.waitpid(program, ctypes.byref(raw), 0) != program:
        err = os.strerror(ctypes.get_errno())
        sys.stderr.write(f"naive_init: waitpid: {err}: the status is lost\n")
        os._exit(1)
    status = raw.value
os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
