"""Fixtures shared by the tests of training and its backends: a TCP server that is not a Ray cluster."""

from __future__ import annotations

import socket
import threading

import pytest


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers (not a Ray cluster): its address."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for connection in held:
        connection.close()
    listener.close()
