"""Structured logging for every process: one line per event, ``device_id`` as a field.

Nothing secret is ever passed to a logger (keys, tokens, passwords, transcripts, audio); the
renderer is JSON for operators and a readable console format for developers.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog


def configure_logging(level: str = "INFO", fmt: Literal["console", "json"] = "console") -> None:
    """Route structlog and the standard library's loggers to stderr in one format."""
    renderer: structlog.typing.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party chatter at INFO (amqtt's per-packet logs, paho's) is noise for operators.
    # piper logs the text it speaks at DEBUG and faster_whisper a line per utterance: neither
    # belongs in the hub's log (no transcript ever does).
    for noisy in (
        "amqtt",
        "transitions",
        "paho",
        "mqtt",
        "httpx",
        "uvicorn.access",
        "piper",
        "faster_whisper",
        "openai",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
