"""`seglab serve model=... [source=FOLDER] [out=FOLDER] [host=127.0.0.1] [port=8000]`: the annotation page.

Loads the model once (seglab/serve/engines.py), prints the URL and serves until Ctrl+C. The server
binds 127.0.0.1 unless `host=` says otherwise; an address every machine on the network can reach
(0.0.0.0, ::) gets a warning, as the page has no login and writes into `out`.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from seglab.config import Config

DEFAULT_OUT = Path("runs") / "serve"
OPEN_HOSTS = ("0.0.0.0", "::", "")  # every interface


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def url_of(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in OPEN_HOSTS else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def build(cfg: Config, model=None):
    """(app, options) for the config; `model` (a backend object) replaces cfg.model, for tests."""
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401  (python-multipart: uploads)
    except ImportError as e:
        raise ValueError(f"seglab serve needs FastAPI, uvicorn and python-multipart ({e.name} is missing): "
                         "pip install 'seglab[serve]'") from None
    from seglab.serve.app import ServeOptions, create_app
    from seglab.serve.engines import load_engine

    source = Path(cfg.source).expanduser() if cfg.source else None
    if source is not None and not source.is_dir():
        raise FileNotFoundError(f"source={cfg.source}: not a folder (serve picks images from a folder)")
    engine = load_engine(model if model is not None else cfg.model, cfg.device, cfg.task)
    options = ServeOptions(out=Path(cfg.out).expanduser() if cfg.out else DEFAULT_OUT, source=source,
                           max_upload_mb=cfg.max_upload_mb, max_video_frames=cfg.max_video_frames)
    return create_app(engine, options), options


def serve(cfg: Config) -> int:
    app, options = build(cfg)
    import uvicorn

    port = cfg.port or free_port(cfg.host)
    if cfg.host in OPEN_HOSTS:
        print(f"seglab serve: WARNING host={cfg.host or '(empty)'} serves the page to every machine that can reach "
              f"this one; it has no login and writes into {options.out}. Use host=127.0.0.1 (the default) "
              "unless you mean it.", file=sys.stderr)
    engine = app.state.engine
    print(f"seglab serve: {engine.name} ({engine.task}); masks are saved to {options.out}/")
    print(f"seglab serve: open {url_of(cfg.host, port)}  (Ctrl+C stops)", flush=True)
    uvicorn.run(app, host=cfg.host, port=port, log_level="warning")
    return 0
