"""`polyhead serve`: load the model, bind the socket, warn about open ports, run uvicorn until a signal."""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any, Optional

from ..console import auto_precision_note, say
from ..errors import PolyheadError
from .app import create_app
from .servable import as_servable
from .settings import BACKENDS, LOOPBACK_HOSTS, ServeSettings


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def security_warning(host: str, api_key: Optional[str]) -> Optional[str]:
    """The start-up warning for a server reachable from other machines without a key, if any."""
    if is_loopback(host) or api_key:
        return None
    return (
        f"listening on {host} without an API key: anyone who can reach this port can use the model; "
        "set --api-key or POLYHEAD_API_KEY"
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready socket on host:port (port 0 picks a free one), with a one-line error on failure."""
    if not 0 <= int(port) <= 65535:
        raise PolyheadError(f"port must be between 0 and 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PolyheadError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise PolyheadError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def settings_from_args(args: Any) -> ServeSettings:
    """ServeSettings from the `polyhead serve` arguments (and POLYHEAD_API_KEY)."""
    settings = ServeSettings(
        max_batch_size=int(getattr(args, "max_batch_size", 64)),
        max_wait_ms=float(getattr(args, "max_wait_ms", 5.0)),
        max_texts=int(getattr(args, "max_texts", 256)),
        max_chars=int(getattr(args, "max_chars", 20000)),
        max_body_bytes=int(getattr(args, "max_body_bytes", 4_000_000)),
        max_queue_texts=int(getattr(args, "max_queue_texts", 1024)),
        request_timeout_s=float(getattr(args, "request_timeout", 30.0)),
        api_key=getattr(args, "api_key", None) or os.environ.get("POLYHEAD_API_KEY") or None,
        backend=getattr(args, "backend", "torch") or "torch",
    )
    settings.validate()
    return settings


def load_for_serving(
    model_dir: Optional[str],
    backend: str = "torch",
    device: Optional[str] = None,
    precision: str = "auto",
    variant: Optional[str] = None,
    threads: Optional[int] = None,
) -> tuple[Any, str]:
    """Load what `polyhead serve` serves: (model, name). No folder: the bundled encoder.

    backend auto is resolved here (polyhead.onnx.backends.pick_backend); the model's own
    `backend` attribute says which one runs ("torch", "onnxruntime", "openvino").
    """
    from ..onnx.backends import load_backend, pick_backend

    if backend not in BACKENDS:
        raise PolyheadError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = pick_backend(model_dir, device=device, precision=precision, threads=threads, variant=variant)
    if backend != "torch":
        model = load_backend(model_dir, backend, device=device, precision=precision, threads=threads, variant=variant)
        return model, Path(str(model_dir)).resolve().name
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    if not model_dir:
        from ..modeling.encoder import Encoder

        enc = Encoder(device=device, precision=precision)
        return as_servable(enc), "all-MiniLM-L6-v2"
    from ..modeling.model import load

    return load(model_dir, device=device, precision=precision), Path(model_dir).resolve().name


def _backend_name(model: Any) -> str:
    """The --backend name of a loaded model ("onnxruntime" is --backend onnx)."""
    name = getattr(model, "backend", "torch")
    return "onnx" if name == "onnxruntime" else name


class _Stop(Exception):
    """Raised by the SIGTERM handler once uvicorn has shut down gracefully."""


def _run_until_signal(server: Any, sock: socket.socket) -> None:
    """Run uvicorn; Ctrl-C and SIGTERM end it cleanly (exit status 0, not 130 or -15).

    uvicorn shuts down gracefully on either signal and then re-raises it with the previous
    handlers restored; the handlers installed here turn that into a normal return.
    """
    import signal

    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None

    def _on_term(signum: int, frame: Any) -> None:
        raise _Stop()

    if main:
        signal.signal(signal.SIGTERM, _on_term)
    try:
        server.run(sockets=[sock])
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def run_server(args: Any) -> int:
    """`polyhead serve`: load the model, bind host:port, serve until interrupted."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise PolyheadError(f"polyhead serve needs fastapi and uvicorn ({exc}): pip install 'polyhead[serve]'") from None
    settings = settings_from_args(args)
    host = getattr(args, "host", "127.0.0.1") or "127.0.0.1"
    port = int(getattr(args, "port", 8000))
    sock = bind_socket(host, port)  # before the slow model load: a busy port fails at once
    try:
        precision = getattr(args, "precision", "auto") or "auto"
        model, name = load_for_serving(
            getattr(args, "model_dir", None), settings.backend, getattr(args, "device", None), precision,
            variant=getattr(args, "variant", None), threads=getattr(args, "threads", None),
        )
        settings.backend = _backend_name(model)  # what auto chose
        settings.model_name = name
        settings.model_dir = getattr(args, "model_dir", None)
        app = create_app(model, settings)
        facts = app.state.facts
        chosen = facts.get("precision") or "as exported"
        say(
            f"precision {chosen} on {facts.get('device') or 'cpu'}"
            + (f" ({auto_precision_note(chosen)})" if precision == "auto" and settings.backend == "torch" else "")
        )
        warning = security_warning(host, settings.api_key)
        if warning:
            say(f"warning: {warning}")
        # A first call outside the server: pays one-time costs (allocator, kernels) before
        # the first client does.
        app.state.model.encode(["warm-up"], batch_size=1)
        tasks = ", ".join(t["name"] for t in facts["tasks"]) or "none (embeddings only)"
        bound = sock.getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        say(
            f"serving {name} on http://{shown}:{bound[1]} (tasks: {tasks}; micro-batching: up to "
            f"{settings.max_batch_size} texts, {settings.max_wait_ms:g} ms; API key {'required' if settings.api_key else 'off'})"
        )
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=10)
        server = uvicorn.Server(config)
        _run_until_signal(server, sock)
    finally:
        sock.close()
    say("server stopped")
    return 0
