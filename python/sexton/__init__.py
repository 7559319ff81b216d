"""Run a command as a tracked process tree, from Python.

``sexton.run(argv)`` runs ``sexton run --json -- ARGV`` with the ``sexton``
executable this package installed, and returns a :class:`Result` holding
the fields of its result document. Unlike ``subprocess.run(...,
capture_output=True)``, it cannot hang on a grandchild that keeps the
output pipe open: sexton returns at most ``wait_delay`` (250 ms) after the
program exits and names every process left behind. A timeout kills the
whole tree, escapees included.

>>> r = sexton.run(["sh", "-c", "echo start ok; sleep 300 &"])
>>> r.stdout, r.exit_code, [(l.cmdline, l.holds) for l in r.leftovers]
(b'start ok\\n', 0, [('sleep 300', ['stdout', 'stderr'])])

See docs/python.md for the API and docs/run.md for what each field means.
"""

from __future__ import annotations

import base64
import datetime
import importlib.metadata
import json
import math
import os
import subprocess
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

__all__ = ["Leftover", "Result", "Rusage", "SextonError", "binary", "run"]

StrOrBytesPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Duration = Union[int, float, datetime.timedelta]
LeftoversPolicy = Literal["leave", "kill", "fail"]
Tracking = Literal["auto", "cgroup", "subreaper"]


class SextonError(Exception):
    """sexton itself failed and printed no result document (a usage
    error: an option value it does not accept). ``returncode`` is its exit
    status (125) and ``stderr`` what it said."""

    def __init__(self, returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr
        first = stderr.strip().splitlines()[0] if stderr.strip() else "no result document"
        super().__init__(f"{first} (exit status {returncode})")


@dataclass(frozen=True)
class Leftover:
    """A process of the tree still alive after the program exited."""

    pid: int
    ppid: int
    cmdline: str
    #: The output pipes it held open: ``"stdout"``, ``"stderr"``.
    holds: list[str]
    #: ``"left"`` (still running) or ``"killed"``.
    action: str


@dataclass(frozen=True)
class Rusage:
    """CPU time and peak RSS of the program and the descendants it waited for."""

    user_ms: float
    sys_ms: float
    max_rss_kb: int


@dataclass(frozen=True)
class Result:
    """One run: the result document of ``sexton run --json``, with the
    captured streams as bytes, and sexton's exit status."""

    #: The command as run.
    argv: list[str]
    #: sexton's exit status, GNU ``timeout``'s conventions: the program's
    #: status, 124 (137) on timeout, 123 for ``leftovers="fail"``, 125 when
    #: sexton failed, 126/127 when the program cannot be run, 128+N.
    returncode: int
    #: The program's pid; None when it could not be started.
    pid: Optional[int]
    #: Its exit code; None when a signal killed it or it did not start.
    exit_code: Optional[int]
    #: The signal that killed it (``"TERM"``, ``"RTMIN+3"``), else None.
    signal: Optional[str]
    timed_out: bool
    #: From the start to the program's exit, not counting the wait-delay.
    duration_ms: float
    #: What the tree wrote, byte for byte (at most ``output_limit``).
    stdout: bytes
    stderr: bytes
    #: Every byte written to each stream, and what ``output_limit`` dropped.
    stdout_bytes: int
    stderr_bytes: int
    stdout_dropped: int
    stderr_dropped: int
    rusage: Rusage
    leftovers: list[Leftover]
    #: How many processes sexton signalled to end them.
    killed: int
    #: ``"cgroup"`` or ``"subreaper"``; None when the program did not start.
    tracking: Optional[str]
    #: Why the program could not be started (exit_code and pid are None).
    error: Optional[str]

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], returncode: int) -> Result:
        """Builds a Result from a parsed result document."""

        def stream(name: str) -> bytes:
            encoded = doc.get(f"{name}_base64")
            if encoded is not None:
                return base64.b64decode(encoded)
            text: str = doc.get(name, "")
            return text.encode("utf-8")

        rusage = doc.get("rusage") or {}
        return cls(
            argv=list(doc.get("argv", [])),
            returncode=returncode,
            pid=doc.get("pid"),
            exit_code=doc.get("exit_code"),
            signal=doc.get("signal"),
            timed_out=bool(doc.get("timed_out", False)),
            duration_ms=float(doc.get("duration_ms", 0.0)),
            stdout=stream("stdout"),
            stderr=stream("stderr"),
            stdout_bytes=int(doc.get("stdout_bytes", 0)),
            stderr_bytes=int(doc.get("stderr_bytes", 0)),
            stdout_dropped=int(doc.get("stdout_dropped", 0)),
            stderr_dropped=int(doc.get("stderr_dropped", 0)),
            rusage=Rusage(
                user_ms=float(rusage.get("user_ms", 0.0)),
                sys_ms=float(rusage.get("sys_ms", 0.0)),
                max_rss_kb=int(rusage.get("max_rss_kb", 0)),
            ),
            leftovers=[
                Leftover(
                    pid=int(left["pid"]),
                    ppid=int(left["ppid"]),
                    cmdline=str(left["cmdline"]),
                    holds=[str(h) for h in left.get("holds", [])],
                    action=str(left["action"]),
                )
                for left in doc.get("leftovers", [])
            ],
            killed=int(doc.get("killed", 0)),
            tracking=doc.get("tracking"),
            error=doc.get("error"),
        )


_binary: Optional[str] = None


def binary() -> str:
    """The path of the ``sexton`` executable installed with this package
    (a script of its wheel: the environment's ``bin`` directory). A
    ``sexton`` elsewhere on ``PATH`` is never used."""
    global _binary
    if _binary is None:
        _binary = _find_binary()
    return _binary


def _find_binary() -> str:
    here = Path(__file__).resolve().parent
    candidates: list[Path] = []
    # The files this package's own distribution installed (its RECORD):
    # the script, wherever the installer put it (venv, --user, --prefix).
    for dist in importlib.metadata.distributions(path=[str(here.parent)]):
        if (dist.metadata["Name"] or "").lower() != "sexton":
            continue
        for f in dist.files or []:
            if f.name == "sexton" and len(f.parts) > 1 and f.parts[-2] == "bin":
                candidates.append(Path(str(dist.locate_file(f))))
    # Then the scripts directories of this interpreter's install schemes.
    for scheme in (None, f"{os.name}_user"):
        try:
            scripts = (
                sysconfig.get_path("scripts")
                if scheme is None
                else sysconfig.get_path("scripts", scheme)
            )
        except KeyError:
            continue
        candidates.append(Path(scripts) / "sexton")
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c.resolve())
    raise FileNotFoundError(
        "the sexton executable of this package is missing (looked at "
        + ", ".join(str(c) for c in candidates)
        + "); reinstall the package: pip install --force-reinstall sexton"
    )


def _seconds(name: str, value: Duration) -> str:
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or a timedelta, not {value!r}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be 0 or more seconds, not {value!r}")
    return repr(float(value))


def run(
    argv: Sequence[StrOrBytesPath],
    *,
    timeout: Optional[Duration] = None,
    input: Optional[Union[bytes, str]] = None,
    leftovers: LeftoversPolicy = "leave",
    wait_delay: Optional[Duration] = None,
    kill_after: Optional[Duration] = None,
    stop_signal: Optional[Union[str, int]] = None,
    cwd: Optional[StrOrBytesPath] = None,
    env: Optional[Mapping[str, str]] = None,
    clear_env: bool = False,
    output_limit: Optional[Union[int, str]] = None,
    tracking: Tracking = "auto",
) -> Result:
    """Runs ``argv`` under ``sexton run --json`` and returns its result.

    - ``timeout``: seconds (or a timedelta) after which the stop signal
      goes to every process of the tree; None or 0: no timeout.
    - ``input``: bytes (or text, encoded as UTF-8) for the program's
      stdin; None gives it ``/dev/null``.
    - ``leftovers``: ``"leave"``, ``"kill"`` or ``"fail"`` (kill, and
      ``returncode`` 123) for processes still alive when the program exits.
    - ``wait_delay`` (0.25 s), ``kill_after`` (2 s), ``stop_signal``
      (``"TERM"``), ``output_limit`` (bytes kept of each stream, or a size
      such as ``"1MiB"``), ``tracking`` (``"auto"``, ``"cgroup"``,
      ``"subreaper"``): as the options of the same names (docs/run.md).
    - ``cwd``: the program's working directory.
    - ``env``: variables set in the program's environment, on top of the
      inherited one, or of an empty one with ``clear_env=True``.

    A program that cannot be started is a Result too, with ``error`` set
    and ``exit_code`` None. Raises :class:`SextonError` when sexton prints
    no result document (an option value it rejects), FileNotFoundError
    when the package's executable is missing.
    """
    if isinstance(argv, (str, bytes)):
        raise TypeError("argv must be a sequence of arguments, e.g. ['sh', '-c', script]")
    args = [os.fsdecode(a) if isinstance(a, os.PathLike) else a for a in argv]
    if not args:
        raise ValueError("argv is empty: name a program to run")
    if leftovers not in ("leave", "kill", "fail"):
        raise ValueError(f"leftovers must be 'leave', 'kill' or 'fail', not {leftovers!r}")
    if tracking not in ("auto", "cgroup", "subreaper"):
        raise ValueError(f"tracking must be 'auto', 'cgroup' or 'subreaper', not {tracking!r}")

    cmd: list[Union[str, bytes]] = [binary(), "run", "--json", "--leftovers", leftovers]
    if tracking != "auto":
        cmd += ["--tracking", tracking]
    if timeout is not None:
        cmd += ["--timeout", _seconds("timeout", timeout)]
    if wait_delay is not None:
        cmd += ["--wait-delay", _seconds("wait_delay", wait_delay)]
    if kill_after is not None:
        cmd += ["--kill-after", _seconds("kill_after", kill_after)]
    if stop_signal is not None:
        cmd += ["--signal", str(int(stop_signal)) if isinstance(stop_signal, int) else stop_signal]
    if output_limit is not None:
        cmd += ["--output-limit", str(output_limit)]
    if cwd is not None:
        cmd += ["--cwd", os.fsdecode(cwd)]
    if clear_env:
        cmd.append("--clear-env")
    for key, value in (env or {}).items():
        if not key or "=" in key:
            raise ValueError(f"bad environment variable name {key!r}")
        cmd += ["--env", f"{key}={value}"]
    data = input.encode("utf-8") if isinstance(input, str) else input
    if data is None:
        cmd.append("--no-stdin")
    cmd.append("--")
    cmd += args

    proc = subprocess.run(
        cmd,
        input=data,
        stdin=subprocess.DEVNULL if data is None else None,
        capture_output=True,
        check=False,
    )
    doc: Optional[dict[str, Any]] = None
    lines = proc.stdout.splitlines()
    if lines:
        try:
            parsed = json.loads(lines[-1])
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            doc = parsed
    if doc is None:
        raise SextonError(proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return Result.from_document(doc, proc.returncode)
