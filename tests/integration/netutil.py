"""Loopback network helpers: a listener that never answers, one that hangs up on every Bolt
handshake while counting them, and a port that starts forwarding to a real server only when told
to (a server that "comes up" during --wait)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def silent_listener() -> Iterator[int]:
    """Accept TCP connections on 127.0.0.1 and never send a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


BOLT_MAGIC = b"\x60\x60\xb0\x17"


@contextmanager
def hang_up_listener() -> Iterator[tuple[int, list[float], list[float]]]:
    """Accept TCP on 127.0.0.1 and close each connection: a port that is open but serves no Bolt
    yet. Yields (port, Bolt attempts, bare connects): the monotonic arrival time of each
    connection that began a Bolt handshake, and of each that sent nothing (a TCP probe)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    bolt: list[float] = []
    bare: list[float] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn = server.accept()[0]
            except OSError:
                continue
            arrived = time.monotonic()
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(4)
                except OSError:
                    first = b""
            (bolt if first == BOLT_MAGIC else bare).append(arrived)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1]), bolt, bare
    finally:
        stop.set()
        thread.join()
        server.close()


class Forwarder:
    """Forwards 127.0.0.1:`port` to a real server once `open()` is called; until then the port
    refuses connections, exactly like a server that has not started yet. `cut` sees every chunk
    the client sends; when it returns True the connection breaks before that chunk arrives."""

    def __init__(self, target_port: int, cut: Callable[[bytes], bool] | None = None) -> None:
        self.port = free_port()
        self._target = target_port
        self._cut = cut
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def open(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        server.settimeout(0.2)
        self._server = server
        self._spawn(self._accept)

    def _spawn(self, target, *args) -> None:  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                client = self._server.accept()[0]
            except OSError:
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target))
            self._spawn(self._pipe, client, upstream, self._cut)
            self._spawn(self._pipe, upstream, client, None)

    def _pipe(self, src: socket.socket, dst: socket.socket,
              cut: Callable[[bytes], bool] | None) -> None:
        src.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data or (cut is not None and cut(data)):
                break
            try:
                dst.sendall(data)
            except OSError:
                break
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
        for thread in self._threads:
            thread.join(timeout=2)

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    def __enter__(self) -> Forwarder:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
