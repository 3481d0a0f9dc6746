"""Retries and timeouts shared by every adapter, at the urllib3 layer all three SDKs sit on.

What is retried: connection failures; 429; 502/503/504; 500 for idempotent methods; and 403 when
the server sent Retry-After (GitHub's secondary rate limit). The wait honours Retry-After and is
otherwise exponential with jitter. All retries of one call fit in `deadline` seconds: a wait that
would overrun it is not started, and the last response goes back to the SDK, which raises.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_NOT_PROCESSED = frozenset({429, 502, 503, 504})  # safe to resend even a POST
# A refused or unreachable endpoint is a wrong URL far more often than an outage: fail in seconds.
CONNECT_RETRIES = 3


class DeadlineRetry(Retry):
    """urllib3 Retry bounded by a wall-clock budget per call, not only by a count.

    The SDKs keep one Retry per session; urllib3 derives a fresh copy for every retry of a call, so
    the clock starts at the first retry of each call (`deadline_at` is None until then).
    """

    def __init__(self, *args: Any, budget: float = 120.0, deadline_at: float | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.budget = budget
        self.deadline_at = deadline_at

    def new(self, **kwargs: Any) -> DeadlineRetry:
        kwargs.setdefault("budget", self.budget)
        kwargs.setdefault("deadline_at", self.deadline_at)
        retry = super().new(**kwargs)
        assert isinstance(retry, DeadlineRetry)
        return retry

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if not (self.total and self.total > 0):
            return False
        if status_code == 403:
            return has_retry_after
        if status_code == 500:
            return method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        return status_code in _NOT_PROCESSED

    def increment(self, *args: Any, **kwargs: Any) -> DeadlineRetry:
        retry = super().increment(*args, **kwargs)
        assert isinstance(retry, DeadlineRetry)
        now = time.monotonic()
        if retry.deadline_at is None:
            retry.deadline_at = now + self.budget
        response = kwargs.get("response")
        wait = retry.get_retry_after(response) if response is not None else None
        if wait is None:
            wait = retry.get_backoff_time()
        if now + wait > retry.deadline_at:
            # Out of time: stop rather than sleep past the bound. urllib3 then hands the last
            # response to the SDK (raise_on_status=False), or raises for a connection error.
            raise _exhausted(args, kwargs)
        return retry


def _exhausted(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Exception:
    from urllib3.exceptions import MaxRetryError

    error = kwargs.get("error")
    url = kwargs.get("url", args[1] if len(args) > 1 else "")
    return MaxRetryError(kwargs.get("_pool"), url, error)  # type: ignore[arg-type]


def make_retry(deadline: float, backoff: float = 0.5) -> DeadlineRetry:
    retry = DeadlineRetry(
        total=20,
        connect=CONNECT_RETRIES,
        read=1,  # a server that accepted the request but never answered: one more try, then stop
        status=20,
        other=0,
        backoff_factor=backoff,
        backoff_jitter=backoff / 2,
        backoff_max=30,
        status_forcelist=RETRY_STATUSES | {403},
        allowed_methods=None,  # is_retry decides per method
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
        budget=deadline,
    )
    return retry


def session(deadline: float, backoff: float = 0.5, ca_bundle: str | None = None) -> requests.Session:
    """A requests Session with the shared retry policy mounted, for the SDKs that accept one."""
    s = requests.Session()
    adapter = HTTPAdapter(max_retries=make_retry(deadline, backoff))
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    if ca_bundle:
        s.verify = ca_bundle
    return s


def transport_failure(label: str, api: str, action: str, exc: Exception, ca_bundle: str | None) -> str | None:
    """The one-line message for a call that never got an HTTP answer; None for any other failure."""
    from updater.credentials import tls_hint

    if isinstance(exc, requests.exceptions.SSLError):
        return f"{label}: TLS verification failed for {api} ({action}); {tls_hint(ca_bundle)}"
    if isinstance(exc, requests.RequestException):
        return (
            f"{label}: cannot reach {api} ({action}: {type(exc).__name__}, after {CONNECT_RETRIES} retries); "
            "check -api-endpoint, the network and any proxy"
        )
    return None
