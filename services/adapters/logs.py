"""structlog, one configuration for every Jiedu process: JSON lines for machines, a few readable
lines for a person at a terminal (structlog's own convention).

Where a process's records go:

- **its log file** (`for_process`), for the processes `jiedu up` and `jiedu demo` run:
  `<data dir>/logs/<process>.log`, every record at the configured level as a JSON line, rotated
  by size (`JIEDU_LOG_MAX_BYTES`, keeping `JIEDU_LOG_BACKUPS` old files `….log.1`, `….log.2`).
  One file per process, never shared: `RotatingFileHandler` is safe across threads, not across
  processes (two processes rotating one file lose lines). `jiedu up` (intake, deadline service,
  checkpoints) writes `jiedu.log`, its projector process `jiedu-projector.log`, its
  HTTP API process `jiedu-api.log`; `jiedu demo`
  `demo.log` and `demo-projector.log`. The parts run on their own (`jiedu intake`, `python -m
  services.deadlines`, `python -m services.projector`), of which several may run at once and
  which containers and systemd run, write no file: their standard error is their log.
- **standard error**, by format: `json` writes every record at the level as JSON lines (what
  containers, systemd and CI collect); `console` renders them for people, and a process with a
  log file shows there only warnings and errors (the rest is in the file); `auto` (the default,
  `JIEDU_LOG_FORMAT`, `--log-format`) is `console` on a terminal and `json` otherwise.

The records of other libraries (nats-py, asyncio) go the same ways, through the standard
library's root logger.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import structlog

from services.adapters.config import Settings

FORMATS = ("auto", "json", "console")
LOGS_DIR = "logs"

_installed: list[logging.Handler] = []
"""The handlers this module put on the root logger, replaced by the next `configure`."""


def resolve(fmt: str, stream: TextIO) -> str:
    """`json` or `console`: what `auto` means on this stream."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt != "auto":
        return fmt
    return "console" if _is_terminal(stream) else "json"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def _shared() -> list[Any]:
    """What every record gets, whoever logged it."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _formatter(renderer: Any) -> logging.Formatter:
    before = [structlog.processors.format_exc_info] if isinstance(
        renderer, structlog.processors.JSONRenderer
    ) else []
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *before, renderer],
    )


def _json() -> logging.Formatter:
    return _formatter(structlog.processors.JSONRenderer(ensure_ascii=False))


def configure(
    level: str = "info",
    *,
    fmt: str = "auto",
    file: Path | None = None,
    max_bytes: int = 10 * 1024 * 1024,
    backups: int = 5,
    stream: TextIO | None = None,
) -> str:
    """Send this process's records to `file` (JSON, rotated) if given and to `stream`
    (standard error by default) as `fmt` says (`console` with a file: warnings and errors
    only); returns the format used on the stream."""
    stream = stream or sys.stderr
    number = logging.getLevelNamesMapping()[level.upper()]
    used = resolve(fmt, stream)
    root = logging.getLogger()
    for handler in _installed:
        root.removeHandler(handler)
        handler.close()
    _installed.clear()

    on_stream = logging.StreamHandler(stream)
    if used == "json":
        on_stream.setFormatter(_json())
        on_stream.setLevel(number)
    else:
        colors = _is_terminal(stream) and "NO_COLOR" not in os.environ
        on_stream.setFormatter(_formatter(structlog.dev.ConsoleRenderer(colors=colors)))
        on_stream.setLevel(max(number, logging.WARNING) if file is not None else number)
    _installed.append(on_stream)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        on_file = logging.handlers.RotatingFileHandler(
            file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        on_file.setFormatter(_json())
        on_file.setLevel(number)
        _installed.append(on_file)
    for handler in _installed:
        root.addHandler(handler)
    root.setLevel(number)

    structlog.configure(
        processors=[*_shared(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    return used


def log_file(settings: Settings, process: str) -> Path:
    """The file a process named `process` writes under the data dir."""
    return settings.data_dir / LOGS_DIR / f"{process}.log"


def for_process(settings: Settings, process: str, *, fmt: str | None = None) -> str:
    """Configure a long-running process of the data dir: its own rotated file
    (`log_file(settings, process)`) and standard error as `fmt` (default: the settings')."""
    return configure(
        settings.log_level,
        fmt=fmt or settings.log_format,
        file=log_file(settings, process),
        max_bytes=settings.log_max_bytes,
        backups=settings.log_backups,
    )


def get(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
