#!/usr/bin/env python3
"""Starts a program with a chosen signal mask and ignored signals: the
state a caller hands on across exec.

usage: sigconf.py BLOCK IGNORE PROGRAM [ARGS...]

BLOCK and IGNORE are comma-separated signal names without the SIG prefix
(empty for none). Puts the signals Python itself ignores at start-up
(PIPE, XFSZ) back to their default action, ignores the IGNORE signals,
sets the mask to exactly the BLOCK signals, then execs PROGRAM.
"""
import os
import signal
import sys


def signals(arg):
    return [getattr(signal, "SIG" + n) for n in arg.split(",") if n]


block, ignore = signals(sys.argv[1]), signals(sys.argv[2])
for s in (signal.SIGPIPE, signal.SIGXFSZ):
    signal.signal(s, signal.SIG_DFL)
for s in ignore:
    signal.signal(s, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_SETMASK, block)
os.execvp(sys.argv[3], sys.argv[3:])
