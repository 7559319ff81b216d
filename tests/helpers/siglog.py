#!/usr/bin/env python3
"""Logs the signals it receives: a program for signal-forwarding tests.

usage: siglog.py LOG [--stop] [--exit-on SIG] [--all CODE] SIG...

Installs a handler for every SIG (a name without the SIG prefix, such as
SEGV or TSTP) that appends the signal's name, one line each, to LOG. The
first line, written once every handler is in place, is "ready PID".
Then it waits for signals forever, unless:
  --stop         it stops itself (SIGSTOP) right after writing "ready";
  --exit-on SIG  it exits 0 once SIG has arrived (and been logged);
  --all CODE     it exits CODE once every SIG has arrived at least once.
"""
import os
import signal
import sys


def main():
    args = sys.argv[1:]
    log = args.pop(0)
    stop = False
    exit_on = None
    all_code = None
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--stop":
            stop = True
        elif opt == "--exit-on":
            exit_on = args.pop(0)
        elif opt == "--all":
            all_code = int(args.pop(0))
        else:
            sys.exit(f"siglog: unknown option {opt}")
    names = args
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    seen = set()

    def handler(signum, _frame):
        name = signal.Signals(signum).name[3:]
        os.write(fd, f"{name}\n".encode())
        seen.add(name)
        if name == exit_on:
            os._exit(0)
        if all_code is not None and seen >= set(names):
            os._exit(all_code)

    for name in names:
        signal.signal(getattr(signal, "SIG" + name), handler)
    os.write(fd, f"ready {os.getpid()}\n".encode())
    if stop:
        os.kill(os.getpid(), signal.SIGSTOP)
    while True:
        signal.pause()


main()
