"""Running the app on localhost: in the foreground (``fastcnn serve``) or in a thread."""

from __future__ import annotations

import socket
import threading
import time

from ..errors import InputError

try:
    import uvicorn
except ImportError:  # pragma: no cover - the extra is part of the test install
    raise ImportError("fastcnn serve needs FastAPI and uvicorn: pip install 'fastcnn[serve]'") from None


def bind(host: str = "127.0.0.1", port: int = 0) -> tuple[socket.socket, str]:
    """A listening socket on host:port (port 0: a free one the OS picks) and its URL."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another "
                         "--host or --port (port 0 lets the system choose a free one)") from None
    sock.listen(128)
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    return sock, f"http://{shown}:{sock.getsockname()[1]}/"


def _server(app) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))


def run(app, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until Ctrl+C."""
    _server(app).run(sockets=[sock])


class BackgroundServer:
    """``app`` served from a thread on a free localhost port: ``.url``, then ``.stop()``
    (or use it as a context manager). For notebooks and tests."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0):
        self._sock, self.url = bind(host, port)
        self._server = _server(app)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        daemon=True, name="fastcnn-serve")
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server at {self.url} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
