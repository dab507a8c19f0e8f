"""A running explorer (uvicorn on a free loopback port, in a thread) for the browser test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import torch

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")

from stylegan.serve.app import create_app  # noqa: E402
from stylegan.serve.explorer import Explorer  # noqa: E402


@pytest.fixture(scope="module")
def live_server(parity_dir) -> Iterator[str]:
    """The URL of an explorer serving the StyleGAN3-T parity network sg3t_32 on the CPU."""
    explorer = Explorer(torch.device("cpu"))
    explorer.load(str(parity_dir / "sg3t_32"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(explorer), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the explorer did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        explorer.close()
        sock.close()
