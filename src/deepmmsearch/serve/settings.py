"""The ``serve`` stage: the agent plus the server's own settings (no FastAPI import here).

A serve config is an agent config with a few more top-level keys::

    stage: serve
    agent: {policy: ..., text_search: ..., image_search: ..., grounder: ...}
    host: 127.0.0.1            # loopback by default; anything else asks for an API key
    port: 8080
    api_key_env: DEEPMMSEARCH_API_KEY   # optional: clients must send `Authorization: Bearer <key>`
    max_upload_bytes: 10485760
    max_image_pixels: 25000000
    allow_remote_images: false # true: http(s) image URLs are fetched, never to private addresses
    max_concurrent: 4          # agent runs at once; one more is answered 429 (counted first)
    max_question_chars: 4000   # longer questions (page, chat API, /retrieve queries) get 400
    trajectories_dir: runs     # JSONL files under it can be browsed in the page
    retrieve: null             # text backend for POST /retrieve (default: agent.text_search)

``deepmmsearch serve -c CFG`` also accepts a plain ``stage: agent`` config (server defaults).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from deepmmsearch.config import AgentConfig
from deepmmsearch.registry import TEXT_SEARCH, ComponentSpec, ConfigError


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    stage: str = "serve"
    agent: AgentConfig = field(default_factory=AgentConfig)
    seed: int = 0
    host: str = "127.0.0.1"
    port: int = 8080
    model_name: str = "deepmmsearch"  # the id /v1/models lists and chat requests name
    api_key_env: str | None = None  # name of the environment variable holding the API key
    max_upload_bytes: int = 10 * 1024 * 1024  # one image, before decoding
    max_image_pixels: int = 25_000_000  # width x height after decoding the header
    allow_remote_images: bool = False  # fetch http(s) image URLs (public addresses only)
    remote_timeout_s: float = 10.0
    max_redirects: int = 3
    max_concurrent: int = 4  # agent runs (and /retrieve batches) in flight; more get 429
    max_question_chars: int = 4000  # one question (page or API) or one /retrieve query
    request_timeout_s: float = 600.0  # one agent run
    work_dir: str = "runs/serve"  # uploads/ and (unless agent.artifacts_dir is set) artifacts/
    trajectories_dir: str | None = None  # browsable JSONL files (an eval's output folder)
    image_roots: list[str] = field(default_factory=list)  # more folders whose images may be shown
    save_trajectories: bool = True  # append served trajectories to work_dir/served.jsonl
    retrieve: ComponentSpec | None = None  # text backend of POST /retrieve
    retrieve_topk: int = 3  # Search-R1's default when a request gives no topk
    retrieve_max_queries: int = 256
    retrieve_max_topk: int = 100

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        for name in ("max_upload_bytes", "max_image_pixels", "max_concurrent",
                     "max_question_chars", "retrieve_topk",
                     "retrieve_max_queries", "retrieve_max_topk"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.remote_timeout_s <= 0 or self.request_timeout_s <= 0:
            raise ConfigError("remote_timeout_s and request_timeout_s must be > 0")
        if self.max_redirects < 0:
            raise ConfigError("max_redirects must be >= 0")
        if self.retrieve is not None:
            TEXT_SEARCH.validate(self.retrieve)

    @property
    def retrieve_spec(self) -> ComponentSpec:
        return self.retrieve if self.retrieve is not None else self.agent.text_search

    @property
    def loopback_only(self) -> bool:
        """True when the bind address cannot be reached from another machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
