"""Shared by the serving tests: a real uvicorn server on a free loopback port, in a background thread."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import uvicorn

from polyhead.serving import bind_socket


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve app with uvicorn in a background thread on a free 127.0.0.1 port; yield its base URL."""
    sock = bind_socket("127.0.0.1", 0)  # port 0: the OS picks a free port, no race with other tests
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
