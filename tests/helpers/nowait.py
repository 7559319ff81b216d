#!/usr/bin/env python3
"""A negligent subreaper: the negative control for zombie counting.

usage: nowait.py PROGRAM [ARGS...]

Becomes a child subreaper (prctl(PR_SET_CHILD_SUBREAPER)), runs PROGRAM
and waits for it by pid only: every orphan adopted from PROGRAM's tree
stays a zombie for as long as this process lives. Exits with PROGRAM's
status.
"""
import ctypes
import os
import sys

PR_SET_CHILD_SUBREAPER = 36

libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit(f"nowait: prctl: {os.strerror(ctypes.get_errno())}")
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
