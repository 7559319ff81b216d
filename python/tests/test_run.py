"""Tests of the installed `sexton` package: run them with the Python of
the environment the wheel went into (`python -m unittest discover -s
python/tests -v`). They start real processes and kill whatever they
started, even when they fail."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
import unittest
from pathlib import Path
from typing import Callable, Optional

import sexton

#: Generous: the machine has two noisy cores.
DEADLINE = 20.0

START_SH = """#!/bin/sh
echo start ok
sleep 300 &
echo $! > sleeper.pid
"""


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def poll(cond: Callable[[], bool]) -> bool:
    """Polls cond every 10 ms until it holds or the deadline passes."""
    end = time.monotonic() + DEADLINE
    while True:
        if cond():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.01)


def interpreter(path: str) -> Optional[str]:
    """The ELF program interpreter (dynamic loader) of an executable."""
    with open(path, "rb") as f:
        elf = f.read()
    assert elf[:4] == b"\x7fELF" and elf[4] == 2 and elf[5] == 1, path
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        ph = phoff + i * phentsize
        if struct.unpack_from("<I", elf, ph)[0] == 3:  # PT_INTERP
            (off,) = struct.unpack_from("<Q", elf, ph + 8)
            (size,) = struct.unpack_from("<Q", elf, ph + 32)
            return elf[off : off + size].rstrip(b"\0").decode()
    return None


class Case(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sexton-py-"))
        self.addCleanup(shutil.rmtree, self.dir, True)

    def kill_at_end(self, pid: int, expected: str) -> None:
        """SIGKILLs pid at the end of the test if it is still `expected`."""

        def kill() -> None:
            if alive(pid) and cmdline(pid) == expected:
                os.kill(pid, signal.SIGKILL)

        self.addCleanup(kill)

    def pid_from(self, name: str) -> int:
        path = self.dir / name
        self.assertTrue(poll(lambda: path.exists() and path.read_text().strip() != ""), name)
        return int(path.read_text())

    def start_script(self) -> Path:
        script = self.dir / "start.sh"
        script.write_text(START_SH)
        script.chmod(0o755)
        return script


class SeedCase(Case):
    def test_start_script_returns_with_its_output_and_names_the_leftover(self) -> None:
        script = self.start_script()
        t0 = time.monotonic()
        r = sexton.run([str(script)], cwd=self.dir)
        elapsed = time.monotonic() - t0
        sleeper = self.pid_from("sleeper.pid")
        self.kill_at_end(sleeper, "sleep 300")
        print(f"\nstart.sh under sexton.run returned after {elapsed:.3f} s", file=sys.stderr)
        # It does not wait for the sleeper's 300 s (generous bound: the
        # machine is noisy).
        self.assertLess(elapsed, 5.0)
        self.assertEqual(r.stdout, b"start ok\n")
        self.assertEqual(r.stderr, b"")
        self.assertEqual((r.exit_code, r.returncode, r.error, r.timed_out), (0, 0, None, False))
        self.assertEqual(len(r.leftovers), 1, r.leftovers)
        left = r.leftovers[0]
        self.assertIsInstance(left, sexton.Leftover)
        self.assertEqual((left.pid, left.cmdline, left.action), (sleeper, "sleep 300", "left"))
        self.assertIn("stdout", left.holds)
        self.assertIn(r.tracking, ("cgroup", "subreaper"))
        self.assertTrue(alive(sleeper), "leftovers='leave' lets it run")

    def test_negative_control_without_sexton_the_same_script_hangs(self) -> None:
        # The sleeper really holds the pipe: subprocess.run waits for it
        # until its own timeout.
        script = self.start_script()
        with self.assertRaises(subprocess.TimeoutExpired):
            subprocess.run([str(script)], cwd=self.dir, capture_output=True, timeout=1, check=False)
        self.kill_at_end(self.pid_from("sleeper.pid"), "sleep 300")

    def test_leftovers_kill_ends_the_sleeper(self) -> None:
        r = sexton.run([str(self.start_script())], cwd=self.dir, leftovers="kill")
        sleeper = self.pid_from("sleeper.pid")
        self.kill_at_end(sleeper, "sleep 300")
        self.assertEqual(r.stdout, b"start ok\n")
        self.assertEqual([(l.pid, l.action) for l in r.leftovers], [(sleeper, "killed")])
        self.assertGreaterEqual(r.killed, 1)
        self.assertTrue(poll(lambda: not alive(sleeper)), "the leftover survived")

    def test_leftovers_fail_is_returncode_123(self) -> None:
        r = sexton.run([str(self.start_script())], cwd=self.dir, leftovers="fail")
        self.kill_at_end(self.pid_from("sleeper.pid"), "sleep 300")
        self.assertEqual((r.returncode, r.exit_code), (123, 0))


class Timeout(Case):
    def test_timeout_kills_the_whole_tree_escapee_included(self) -> None:
        script = "setsid sleep 300 & echo $! > escapee.pid; sleep 300"
        r = sexton.run(["sh", "-c", script], cwd=self.dir, timeout=0.5)
        escapee = self.pid_from("escapee.pid")
        self.kill_at_end(escapee, "sleep 300")
        self.assertTrue(r.timed_out)
        self.assertEqual((r.exit_code, r.signal, r.returncode), (None, "TERM", 124))
        self.assertGreaterEqual(r.killed, 2)
        self.assertEqual(r.leftovers, [])
        self.assertTrue(poll(lambda: not alive(escapee)), "the setsid escapee survived")

    def test_no_timeout_lets_the_program_finish(self) -> None:
        r = sexton.run(["sh", "-c", "sleep 0.2; echo done"], timeout=None)
        self.assertEqual((r.stdout, r.timed_out, r.returncode), (b"done\n", False, 0))


class StartFailure(Case):
    def test_a_missing_program_is_a_result_with_error(self) -> None:
        r = sexton.run(["no-such-program-here"])
        self.assertIsNotNone(r.error)
        assert r.error is not None
        self.assertIn("command not found", r.error)
        self.assertEqual((r.exit_code, r.pid, r.tracking, r.returncode), (None, None, None, 127))
        self.assertEqual((r.stdout, r.leftovers), (b"", []))

    def test_a_bad_working_directory_is_a_result_with_error(self) -> None:
        r = sexton.run(["true"], cwd=self.dir / "missing")
        self.assertEqual((r.exit_code, r.returncode), (None, 125))
        self.assertIn("working directory", r.error or "")

    def test_a_value_sexton_rejects_raises(self) -> None:
        with self.assertRaises(sexton.SextonError) as e:
            sexton.run(["true"], stop_signal="NOSUCHSIGNAL")
        self.assertEqual(e.exception.returncode, 125)
        self.assertIn("NOSUCHSIGNAL", str(e.exception))

    def test_bad_arguments_raise_before_anything_runs(self) -> None:
        with self.assertRaises(TypeError):
            sexton.run("echo hi")
        with self.assertRaises(ValueError):
            sexton.run([])
        with self.assertRaises(ValueError):
            sexton.run(["true"], leftovers="maybe")  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            sexton.run(["true"], timeout=-1)


class Streams(Case):
    def test_output_that_is_not_utf8_comes_back_as_the_same_bytes(self) -> None:
        r = sexton.run(["printf", "caf\\351\\n"])
        self.assertEqual(r.stdout, b"caf\xe9\n")
        self.assertEqual(r.stdout_bytes, 5)
        # Negative control: the document's text field alone is lossy; the
        # bytes come from its stdout_base64.
        doc = json.loads(
            subprocess.run(
                [sexton.binary(), "run", "--json", "--", "printf", "caf\\351\\n"],
                capture_output=True,
                check=True,
            ).stdout
        )
        self.assertEqual(doc["stdout"], "caf\ufffd\n")
        self.assertIn("stdout_base64", doc)

    def test_input_reaches_the_program(self) -> None:
        self.assertEqual(sexton.run(["cat"], input=b"hello\n").stdout, b"hello\n")
        self.assertEqual(sexton.run(["cat"], input="h\u00e9\n").stdout, "h\u00e9\n".encode())

    def test_without_input_stdin_is_dev_null(self) -> None:
        # The test runner's own stdin may be a terminal or a pipe that
        # never ends; cat must see end-of-file at once instead.
        r = sexton.run(["sh", "-c", "cat; readlink /proc/self/fd/0"])
        self.assertEqual(r.stdout, b"/dev/null\n")

    def test_env_and_output_limit(self) -> None:
        r = sexton.run(["sh", "-c", 'printf "%s" "$GREETING"'], env={"GREETING": "hi there"})
        self.assertEqual(r.stdout, b"hi there")
        r = sexton.run(["seq", "1", "1000"], output_limit=10)
        self.assertEqual(r.stdout, b"1\n2\n31000\n")
        self.assertEqual((r.stdout_bytes, r.stdout_dropped), (3893, 3883))


class Binary(Case):
    def test_the_module_is_the_installed_one(self) -> None:
        # Not python/sexton of a source tree: these tests are about the wheel.
        module = os.path.realpath(sexton.__file__ or "")
        self.assertTrue(module.startswith(os.path.realpath(sys.prefix) + os.sep), module)
        self.assertTrue(os.path.exists(os.path.join(os.path.dirname(module), "py.typed")))

    def test_the_binary_is_the_static_one_this_environment_installed(self) -> None:
        path = sexton.binary()
        scripts = os.path.realpath(sysconfig.get_path("scripts"))
        self.assertEqual(os.path.dirname(path), scripts)
        self.assertTrue(path.startswith(os.path.realpath(sys.prefix) + os.sep), path)
        self.assertIsNone(interpreter(path), "the packaged sexton is dynamically linked")
        mode = os.stat(path).st_mode
        self.assertTrue(mode & stat.S_IXUSR)
        # Negative control for the interpreter check: this Python is dynamic.
        self.assertIsNotNone(interpreter(os.path.realpath(sys.executable)))

    def test_a_sexton_earlier_on_path_is_not_used(self) -> None:
        fake_dir = self.dir / "bin"
        fake_dir.mkdir()
        fake = fake_dir / "sexton"
        fake.write_text(f"#!/bin/sh\necho fake > {self.dir}/fake-ran\nexit 99\n")
        fake.chmod(0o755)
        old = os.environ["PATH"]
        os.environ["PATH"] = f"{fake_dir}{os.pathsep}{old}"
        self.addCleanup(os.environ.__setitem__, "PATH", old)
        # Negative control: on this PATH, a plain "sexton" is the fake.
        self.assertEqual(subprocess.run(["sexton"], check=False).returncode, 99)
        (self.dir / "fake-ran").unlink()
        r = sexton.run(["echo", "real"])
        self.assertEqual((r.stdout, r.returncode), (b"real\n", 0))
        self.assertFalse((self.dir / "fake-ran").exists())


if __name__ == "__main__":
    unittest.main()
