"""A real terminal for a test: one tmux pane running one command, read as a person sees it.

The pane's screen is read with `capture-pane` each time tmux reports new output to a control
mode client attached beside it, so a test waits for what it expects to appear without ever
sleeping. The pane stays after its command exits (remain-on-exit), with the exit status.
"""

from __future__ import annotations

import os
import select
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

# A capture at least this often, even if a notification of new output were missed.
RECHECK = 1.0


def tmux() -> str:
    path = shutil.which("tmux")
    assert path, "tmux is missing (scripts/install-deps installs it)"
    return path


class Pane:
    """`argv` in a detached tmux session of `width` x `height`, with exactly `env` (plus what
    tmux itself sets: TERM, TMUX, TMUX_PANE), on a private server whose socket is in `scratch`."""

    def __init__(self, argv: list[str], env: dict[str, str], scratch: Path, *,
                 width: int = 80, height: int = 24) -> None:
        self.width = width
        config = scratch / "tmux.conf"
        config.write_text("set-option -g remain-on-exit on\nset-option -g history-limit 5000\n")
        self._base = [tmux(), "-u", "-S", str(scratch / "tmux.sock"), "-f", str(config)]
        # The server starts with this environment, and the pane gets the server's.
        subprocess.run([*self._base, "new-session", "-d", "-s", "test", "-x", str(width),
                        "-y", str(height), shlex.join(argv)],
                       env=env, check=True, capture_output=True, text=True)
        self._client = subprocess.Popen(
            [*self._base, "-C", "attach-session", "-f", "ignore-size,read-only", "-t", "test"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.screen = ""

    def _tmux(self, *args: str) -> str:
        return subprocess.run([*self._base, *args], check=True, capture_output=True,
                              text=True).stdout

    def capture(self) -> str:
        """The screen now and the rows scrolled off it, one row per line, long lines joined
        back into one."""
        self.screen = self._tmux("capture-pane", "-p", "-J", "-S", "-", "-E", "-", "-t", "test")
        return self.screen

    def rows(self) -> list[str]:
        return [row.rstrip() for row in self.capture().splitlines()]

    def exit_status(self) -> int | None:
        """The command's exit status (128 + N for signal N) once it has ended, else None."""
        # tmux may see the pane's terminal close (pane_dead) before it has reaped the process:
        # only a status or a signal says it has ended.
        status, signal = self._tmux("display-message", "-p", "-t", "test",
                                    "#{pane_dead_status}:#{pane_dead_signal}").strip().split(":")
        if status:
            return int(status)
        return 128 + int(signal) if signal else None

    def until(self, seen: Callable[[list[str]], bool], what: str, timeout: float = 120) -> None:
        """Return once `seen(rows)` holds; fail after `timeout` seconds with the screen."""
        assert self._client.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self._client.stdout.fileno()
        while not seen(self.rows()):
            left = deadline - time.monotonic()
            assert left > 0, f"not seen within {timeout:g} s: {what}; the screen:\n{self.screen}"
            ready, _, _ = select.select([fd], [], [], min(left, RECHECK))
            if ready and not os.read(fd, 65536):
                raise AssertionError(f"tmux went away before {what}:\n{self.screen}")

    def finished(self, timeout: float = 120) -> int:
        """Wait for the command to end; its exit status."""
        self.until(lambda _: self.exit_status() is not None, "the command's end", timeout)
        status = self.exit_status()
        assert status is not None
        self.capture()
        return status

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "test", *keys)

    def close(self) -> None:
        subprocess.run([*self._base, "kill-server"], check=False, capture_output=True)
        if self._client.stdin is not None:
            self._client.stdin.close()
        self._client.wait(timeout=30)
        if self._client.stdout is not None:
            self._client.stdout.close()
