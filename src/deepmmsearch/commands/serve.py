"""``deepmmsearch serve --config CFG [--host 127.0.0.1] [--port 8080] [a.b=c ...]``

Serves the web page (upload an image, ask, watch the search live, browse past trajectories),
``POST /v1/chat/completions`` + ``GET /v1/models`` (OpenAI format) and Search-R1's
``POST /retrieve``. CFG is a ``stage: serve`` config (see configs/serve_fixture.yaml) or a plain
``stage: agent`` config (server defaults). It binds 127.0.0.1 unless told otherwise; binding
elsewhere without ``api_key_env`` is refused unless ``--insecure`` is given.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, help="a serve (or agent) config")
    p.add_argument("--host", help="bind address (default: the config's host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: the config's port, 8080)")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback bind without an API key")
    p.add_argument("overrides", nargs="*", default=[], help="config overrides a.b=c")


def load_serve_config(path: str, overrides: list[str], host: str | None = None,
                      port: int | None = None):
    """A ServeConfig from a serve config, or from an agent config with server defaults."""
    from dataclasses import replace

    from deepmmsearch.config import AskConfig, load_config
    from deepmmsearch.registry import ConfigError
    from deepmmsearch.serve.settings import ServeConfig

    cfg = load_config(path, overrides)
    if isinstance(cfg, AskConfig):
        cfg = ServeConfig(agent=cfg.agent, seed=cfg.seed)
    elif not isinstance(cfg, ServeConfig):
        raise ConfigError(f"{path}: this is a {cfg.stage!r} config; serve needs stage serve or "
                          "agent")
    changes = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    return replace(cfg, **changes) if changes else cfg


def run(args: argparse.Namespace) -> int:
    from deepmmsearch.registry import ConfigError, missing_dependency

    cfg = load_serve_config(args.config, args.overrides, args.host, args.port)
    if not cfg.loopback_only and not cfg.api_key_env and not args.insecure:
        raise ConfigError(f"refusing to bind {cfg.host} without an API key: set api_key_env "
                          "(the name of an environment variable holding the key), or pass "
                          "--insecure if this network is trusted")
    try:
        import uvicorn
    except ImportError:
        raise missing_dependency("uvicorn", "serve", "deepmmsearch serve") from None
    from deepmmsearch.serve.app import create_app

    app = create_app(cfg)
    print(f"deepmmsearch serve: http://{cfg.host}:{cfg.port}/  (OpenAI base URL: "
          f"http://{cfg.host}:{cfg.port}/v1, model {cfg.model_name!r}; "
          f"API key {'required' if cfg.api_key_env else 'not required'})", flush=True)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="info")
    return 0
