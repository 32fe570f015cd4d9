"""What a served demo accepts from the network, and where it keeps what it was sent.

* Request bodies: a JSON request (``/gradio_api/queue/join``, ``/run/...``) is at most
  :data:`MAX_JSON_BYTES`; gradio reads a whole body into memory before looking at it, so
  without a cap one request of a few gigabytes takes the server down. Only
  ``/gradio_api/upload`` (multipart files, capped by gradio's ``max_file_size``) may send
  more. :class:`BodyLimit` is an ASGI middleware, given to gradio's FastAPI app through
  ``launch(app_kwargs=...)``.
* Uploads: gradio keeps every uploaded file under ``GRADIO_TEMP_DIR`` (default
  ``/tmp/gradio``, readable by every user, never cleaned). Unless the user chose a folder,
  :func:`private_upload_dir` points it at a fresh folder only this user can open (mode
  0700), removed when the process ends, and :data:`DELETE_CACHE` makes gradio delete
  uploads older than an hour while it runs. "Ends" includes SIGTERM (``kill``, a service
  manager, a container stop): :func:`exit_on_sigterm` turns it into a normal exit while a
  server blocks, since the default action kills the process before ``atexit`` runs and
  leaves users' uploads on disk.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from typing import Any

MAX_JSON_BYTES = 1 << 20                # 1 MiB: a 20,000-character text is ~80 KB of JSON
DELETE_CACHE = (1800, 3600)            # every 30 min, delete uploads older than an hour
UPLOAD_ENV = "GRADIO_TEMP_DIR"
_UPLOAD_PATHS = ("/gradio_api/upload",)


def private_upload_dir() -> str:
    """Point ``GRADIO_TEMP_DIR`` at a folder only this user can read (once per process);
    returns the folder in use. A folder the user set is kept as it is."""
    chosen = os.environ.get(UPLOAD_ENV)
    if chosen:
        return chosen
    path = tempfile.mkdtemp(prefix="zoo-demo-uploads-")     # mode 0700
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    os.environ[UPLOAD_ENV] = path
    return path


class BodyLimit:
    """ASGI middleware: refuse (413) a request body over ``max_bytes``, by its
    Content-Length before reading it, or while reading one that names no length."""

    def __init__(self, app: Any, max_bytes: int = MAX_JSON_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path", "").endswith(_UPLOAD_PATHS):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _reject(send, self.max_bytes)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    from fastapi import HTTPException

                    raise HTTPException(status_code=413, detail=_too_large(self.max_bytes))
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> str:
    return (f"request body over {limit // 1024} KiB; send files through the upload "
            "endpoint and keep texts under the demo's limit")


async def _reject(send: Any, limit: int) -> None:
    import json

    body = json.dumps({"detail": _too_large(limit)}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def app_kwargs() -> dict[str, Any]:
    """What ``demo.launch(app_kwargs=...)`` needs for :class:`BodyLimit`."""
    from starlette.middleware import Middleware

    return {"middleware": [Middleware(BodyLimit, max_bytes=MAX_JSON_BYTES)]}


@contextlib.contextmanager
def exit_on_sigterm():
    """While the block runs in the main thread, SIGTERM exits (code 143) through the
    ``finally`` blocks and ``atexit`` handlers, as Ctrl-C does; elsewhere it does nothing."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
