"""A real terminal for a test: one tmux pane running one command, read as a person sees it.

The pane's screen is read with `capture-pane` each time tmux reports new output to a control
mode client attached beside it, so a test waits for what it expects to appear without ever
sleeping. The pane stays after its command exits (remain-on-exit), its exit status printed
by a shell around it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

EXITED = "[exited "
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
        # The exit status is printed by a shell around the command, not read from tmux: tmux
        # was seen leaving an ended command's process unreaped (a zombie, no status) for
        # minutes. The shell's no-op trap lets it outlive a Ctrl-C to print the status; a
        # trapped signal is back to its default in the command.
        wrapped = ["/bin/sh", "-c", f'trap : INT TERM; "$@"; echo "{EXITED}$?]"', "sh", *argv]
        # The server starts with this environment, and the pane gets the server's.
        subprocess.run([*self._base, "new-session", "-d", "-s", "test", "-x", str(width),
                        "-y", str(height), shlex.join(wrapped)],
                       env=env, check=True, capture_output=True, text=True)
        self._client = subprocess.Popen(
            [*self._base, "-C", "attach-session", "-f", "ignore-size,read-only", "-t", "test"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        # Read all the time: tmux may stop reading a pane for a client that falls behind, and
        # the command under test would then block on its writes.
        self._changed = threading.Condition()
        self._changes = 0
        self._reader = threading.Thread(target=self._read_client, daemon=True)
        self._reader.start()
        self.screen = ""

    def _read_client(self) -> None:
        assert self._client.stdout is not None
        fd = self._client.stdout.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:  # closed under it as the pane is torn down: the client is gone
                data = b""
            with self._changed:
                self._changes += 1 if data else -(10**9)  # negative: the client is gone
                self._changed.notify_all()
            if not data:
                return

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
        ended = [row for row in self.rows() if row.startswith(EXITED)]
        return int(ended[-1][len(EXITED):-1]) if ended else None

    def until(self, seen: Callable[[list[str]], bool], what: str, timeout: float = 120) -> None:
        """Return once `seen(rows)` holds; fail after `timeout` seconds with the screen."""
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                changes = self._changes
            if seen(self.rows()):
                return
            left = deadline - time.monotonic()
            assert left > 0, (f"not seen within {timeout:g} s: {what}; the processes:\n"
                              f"{self.processes()}the screen:\n{self.screen}")
            with self._changed:
                if self._changes == changes:  # else new output came while capturing
                    self._changed.wait(min(left, RECHECK))
                if self._changes < 0:
                    raise AssertionError(f"tmux went away before {what}:\n{self.screen}")

    def processes(self) -> str:
        """The pane's processes (for a failure's message)."""
        pid = self._tmux("display-message", "-p", "-t", "test", "#{pane_pid}").strip()
        return subprocess.run(["ps", "-o", "pid,stat,wchan:20,args", "--ppid", pid, "-p", pid],
                              capture_output=True, text=True, check=False).stdout

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
