"""Logging to stderr, always through the redaction layer. stdout is reserved for results."""

from __future__ import annotations

import sys

from updater.redact import redact

_verbose = False
PROG = "update-gitops-repo"


def set_verbose(on: bool) -> None:
    global _verbose
    _verbose = on


def is_verbose() -> bool:
    return _verbose


def info(message: str) -> None:
    """A line every user should see (what changed, what was pushed, the PR)."""
    print(redact(message), file=sys.stderr, flush=True)


def debug(message: str) -> None:
    """Detail shown with -verbose: each template, each git step, each API call."""
    if _verbose:
        print(redact(message), file=sys.stderr, flush=True)


def warn(message: str) -> None:
    print(redact(f"{PROG}: warning: {message}"), file=sys.stderr, flush=True)


def error(message: str) -> None:
    print(redact(f"{PROG}: error: {message}"), file=sys.stderr, flush=True)
