"""Retries and timeouts shared by every adapter, at the urllib3 layer all three SDKs sit on.

What is retried: connection failures; 429; 502/503/504; 500 for idempotent methods; and 403 when
it is a rate limit (the server sent Retry-After, or said the quota is used up until a reset time:
GitHub's primary and secondary limits). The wait honours Retry-After, then a rate limit's reset
time (`x-ratelimit-reset`, GitLab's `RateLimit-Reset`), and is otherwise exponential with jitter.
All retries of one call fit in `deadline` seconds: a wait that would overrun it is not started,
and the last response goes back to the SDK, which raises.

Every client's retry policy keeps a `CallLog` of its most recent request: each attempt (the status
answered, or how the request failed: never connected, or sent and not answered) and why retrying
stopped. The adapters word their errors from it (`status_failure`, `transport_failure`), so that a
message says what was actually tried, never what the policy would have liked to try.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_NOT_PROCESSED = frozenset({429, 502, 503, 504})  # safe to resend even a POST
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# A refused or unreachable endpoint is a wrong URL far more often than an outage: fail in seconds.
CONNECT_RETRIES = 3
# A server that accepted the request but never answered: one more try, then stop.
READ_RETRIES = 1
_NO_ANSWER = frozenset({"connect", "timeout", "dropped"})
# Rate-limit resets are whole epoch seconds and the clocks differ: try again a second after it.
RESET_MARGIN = 1.0
# The advice ending a message about a write that may have taken effect; `checked()` replaces it with
# what an adapter found when it looked.
CHECK = "check whether it took effect, then rerun"


class Attempt:
    """One try of a request: the status it was answered with, or how it failed without an answer."""

    __slots__ = ("failure", "reset_at", "retry_after", "status", "wait")

    def __init__(self, status: int | None = None, failure: str | None = None) -> None:
        self.status = status
        # "connect": never reached the server (refused, DNS, connect timeout); "timeout": sent, and no
        # answer came in time; "dropped": sent, and the connection closed without an answer.
        self.failure = failure
        self.wait: float | None = None  # the wait before the next attempt; None for the last one
        self.retry_after: float | None = None  # what the answer's Retry-After asked for
        self.reset_at: float | None = None  # epoch seconds a used-up rate limit resets, if the answer said

    @property
    def what(self) -> str:
        if self.status is not None:
            return str(self.status)
        return {"connect": "no connection", "timeout": "no answer in time", "dropped": "dropped"}.get(
            self.failure or "", self.failure or "failed"
        )


class CallLog:
    """What the most recent request of one client went through, kept by its retry policy."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.method = ""
        self.attempts: list[Attempt] = []
        # Why it stopped: "deadline" (the next wait would end past it), "not-retried" (an answer the
        # policy does not retry), "count" (the most retries of that kind were made).
        self.stop: str | None = None
        self.wanted: float | None = None  # the wait not started, when stop == "deadline"

    def record(self, index: int, attempt: Attempt, method: str | None, *, reuse: bool = False) -> Attempt:
        """Log `attempt` as try number `index` (0-based) of the current request.

        urllib3 shows an answer to is_retry() and then, when it is retried, to increment(): the second
        look (`reuse`) finds the attempt the first one logged.
        """
        if reuse and index < len(self.attempts) and _same(self.attempts[index], attempt):
            del self.attempts[index + 1 :]
            return self.attempts[index]
        if index == 0:  # a new request: forget the previous one
            self.stop, self.wanted = None, None
            self.method = (method or "").upper()
        del self.attempts[index:]
        self.attempts.append(attempt)
        return attempt

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def waited(self) -> float:
        return sum(a.wait or 0.0 for a in self.attempts[:-1])

    @property
    def reset_at(self) -> float | None:
        return self.last.reset_at if self.last else None

    def tried(self) -> str:
        """'sent once'; '4 attempts, each answered 502'; '3 attempts (502 twice, then 503)'."""
        n = len(self.attempts)
        if n <= 1:
            return "sent once"
        runs: list[list[Any]] = []
        for attempt in self.attempts:
            if runs and runs[-1][0] == attempt.what:
                runs[-1][1] += 1
            else:
                runs.append([attempt.what, 1])
        if len(runs) == 1:
            first = self.attempts[0]
            each = (
                f"each answered {first.status}"
                if first.status is not None
                else _EACH.get(first.what, first.what)
            )
            text = f"{n} attempts, {each}"
        else:
            listed = ", then ".join(
                f"{what} {_times(count)}" if count > 1 else str(what) for what, count in runs
            )
            text = f"{n} attempts ({listed})"
        waited = self.waited
        return text + (f", {_secs(waited)}s of waits between them" if waited >= 0.05 else "")

    def why_stopped(self) -> str:
        """The end of a message: why no further attempt was made."""
        if self.stop == "deadline" and self.wanted is not None:
            asked = self.last.retry_after if self.last else None
            reset = self.reset_at
            if reset is not None and asked is None:
                left = max(0.0, reset - time.time())
                return (
                    f"the limit resets at {_clock(reset)} UTC, {left:.0f}s from now, past the "
                    f"{self.budget:g}s retry deadline: not waiting for it"
                )
            source = " (Retry-After)" if asked is not None else ""
            deadline = f"the {self.budget:g}s retry deadline"
            return f"the next wait, {_secs(self.wanted)}s{source}, would end past {deadline}"
        if self.stop == "count":
            return "that is as many attempts as the tool makes"
        return ""


_EACH = {
    "no connection": "none connected",
    "no answer in time": "none answered in time",
    "dropped": "each dropped without an answer",
}


def _secs(seconds: float) -> str:
    """0.23, 4.2, 16, 600, 3600: seconds, without exponents."""
    return f"{seconds:.2g}" if seconds < 10 else f"{seconds:.0f}"


def _times(count: int) -> str:
    return "twice" if count == 2 else f"{count} times"


def _same(old: Attempt, new: Attempt) -> bool:
    return old.status == new.status and old.failure == new.failure


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(epoch))


def rate_limit_reset(headers: Any) -> float | None:
    """The epoch second a used-up quota resets, when the headers say the quota is used up.

    GitHub sends `x-ratelimit-remaining: 0` with `x-ratelimit-reset` (UTC epoch seconds) on a
    primary limit's 403 or 429; GitLab sends `RateLimit-Remaining: 0` with `RateLimit-Reset`.
    """
    for prefix in ("x-ratelimit-", "ratelimit-"):
        remaining, reset = headers.get(prefix + "remaining"), headers.get(prefix + "reset")
        if remaining is None or reset is None:
            continue
        try:
            if int(str(remaining).strip()) > 0:
                return None
            return float(str(reset).strip())
        except ValueError:
            return None
    return None


class DeadlineRetry(Retry):
    """urllib3 Retry bounded by a wall-clock budget per call, not only by a count.

    The SDKs keep one Retry per session; urllib3 derives a fresh copy for every retry of a call, so
    the clock starts at the first retry of each call (`deadline_at` is None until then). All the
    copies share the session's `log`.
    """

    def __init__(
        self,
        *args: Any,
        budget: float = 120.0,
        deadline_at: float | None = None,
        log: CallLog | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.budget = budget
        self.deadline_at = deadline_at
        self.log = log if log is not None else CallLog(budget)

    def new(self, **kwargs: Any) -> DeadlineRetry:
        kwargs.setdefault("budget", self.budget)
        kwargs.setdefault("deadline_at", self.deadline_at)
        kwargs.setdefault("log", self.log)
        retry = super().new(**kwargs)
        assert isinstance(retry, DeadlineRetry)
        return retry

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # urllib3 asks this of every answer, so it is where each attempt that got one is logged.
        self.log.record(len(self.history), Attempt(status_code), method)
        if status_code < 400:
            return False
        retry = self._should_retry(method, status_code)
        if not retry:
            self.log.stop = (
                "count" if status_code in RETRY_STATUSES and self._exhausted_total() else "not-retried"
            )
        return retry

    def _should_retry(self, method: str, status_code: int) -> bool:
        if self._exhausted_total():
            return False
        if status_code == 403:
            return True  # increment() tells a rate limit from a refusal by the headers
        if status_code == 500:
            return method.upper() in _IDEMPOTENT
        return status_code in _NOT_PROCESSED

    def _exhausted_total(self) -> bool:
        return not (self.total and self.total > 0)

    def get_retry_after(self, response: Any) -> float | None:
        """Retry-After, else (for a 403 or 429) the time until a used-up rate limit resets."""
        header = response.headers.get("Retry-After")
        if header is not None:
            try:
                return self.parse_retry_after(header)
            except Exception:  # an unparsable header: back off as if there were none
                return None
        if response.status in (403, 429):
            reset = rate_limit_reset(response.headers)
            if reset is not None:
                return max(0.0, reset - time.time()) + RESET_MARGIN
        return None

    def increment(self, *args: Any, **kwargs: Any) -> DeadlineRetry:
        method = kwargs.get("method", args[0] if args else None)
        response = kwargs.get("response", args[2] if len(args) > 2 else None)
        error = kwargs.get("error", args[3] if len(args) > 3 else None)
        log = self.log
        index = len(self.history)
        if error is not None:
            attempt = log.record(index, Attempt(failure=self._failure_kind(error)), method)
        elif response is not None:
            attempt = log.record(index, Attempt(response.status), method, reuse=True)
        else:
            attempt = log.record(index, Attempt(failure="failed"), method)
        if response is not None:
            header = response.headers.get("Retry-After")
            attempt.retry_after = self.get_retry_after(response) if header is not None else None
            attempt.reset_at = rate_limit_reset(response.headers) if response.status in (403, 429) else None
        try:
            retry = super().increment(*args, **kwargs)
        except Exception:
            log.stop = "count"
            raise
        assert isinstance(retry, DeadlineRetry)
        now = time.monotonic()
        if retry.deadline_at is None:
            retry.deadline_at = now + self.budget
        wait = retry.get_retry_after(response) if response is not None else None
        if response is not None and response.status == 403 and wait is None:
            # A 403 that is no rate limit (no Retry-After, quota not used up): a refusal, reported now.
            log.stop = "not-retried"
            raise _exhausted(args, kwargs)
        if wait is None:
            wait = retry.get_backoff_time()
        if now + wait > retry.deadline_at:
            # Out of time: stop rather than sleep past the bound. urllib3 then hands the last
            # response to the SDK (raise_on_status=False), or raises for a connection error.
            log.stop, log.wanted = "deadline", wait
            raise _exhausted(args, kwargs)
        attempt.wait = wait
        return retry

    def _failure_kind(self, error: Exception) -> str:
        if self._is_connection_error(error):
            return "connect"
        from urllib3.exceptions import ReadTimeoutError

        if isinstance(error, ReadTimeoutError):
            return "timeout"
        if self._is_read_error(error):
            return "dropped"
        return type(error).__name__


def _exhausted(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Exception:
    from urllib3.exceptions import MaxRetryError

    error = kwargs.get("error")
    url = kwargs.get("url", args[1] if len(args) > 1 else "")
    return MaxRetryError(kwargs.get("_pool"), url, error)  # type: ignore[arg-type]


def make_retry(deadline: float, backoff: float = 0.5) -> DeadlineRetry:
    retry = DeadlineRetry(
        total=20,
        connect=CONNECT_RETRIES,
        read=READ_RETRIES,
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


def call_log(client: requests.Session | Retry | None) -> CallLog | None:
    """The CallLog of a session made by `session()` (or of a retry made by `make_retry()`)."""
    if isinstance(client, DeadlineRetry):
        return client.log
    if isinstance(client, requests.Session):
        retry = getattr(client.get_adapter("https://"), "max_retries", None)
        return retry.log if isinstance(retry, DeadlineRetry) else None
    return None


# -- messages -------------------------------------------------------------------------------------------


def status_failure(
    label: str, api: str, action: str, status: int, reason: str, log: CallLog | None
) -> str | None:
    """The one-line message for a 429, a 5xx or a rate-limit 403 that retrying did not get past.

    Worded from `log` when it describes this answer: how many attempts were made, what each got,
    and why no further one was; None for a status the adapter explains itself (401, 404, ...).
    """
    known = log if log is not None and log.last is not None and log.last.status == status else None
    limited = status == 429 or (
        status == 403
        and known is not None
        and (known.last is not None and (known.last.retry_after is not None or known.reset_at is not None))
    )
    if not limited and status < 500:
        return None
    if reason.strip() in ("", f"HTTP {status}"):
        from http.client import responses

        reason = responses.get(status, "")
    answer = f"{status} {reason}".strip() if not reason.startswith(str(status)) else reason
    if known is None:
        return (
            f"{label} answered {answer} trying to {action} at {api}; rerun later"
            if not limited
            else f"{label} rate-limited the run ({answer}) trying to {action} at {api}; rerun later"
        )
    tried, why = known.tried(), known.why_stopped()
    if limited:
        reset = known.reset_at
        asked = known.last is not None and known.last.retry_after is not None
        after = f"rerun after {_clock(reset)} UTC" if reset is not None and not asked else "rerun later"
        return f"{label} rate-limited the run ({answer}) trying to {action} at {api}: {tried}; " + (
            f"{why}; {after}" if why else after
        )
    if known.stop == "not-retried":
        return (
            f"{label} answered {answer} trying to {action} at {api}: sent once and not retried, because "
            f"the server may have carried the {known.method or 'request'} out before failing; {CHECK}"
        )
    return f"{label} answered {answer} trying to {action} at {api}: {tried}" + (
        f"; {why}; rerun later" if why else "; rerun later"
    )


def transport_failure(
    label: str,
    api: str,
    action: str,
    exc: Exception,
    ca_bundle: str | None,
    log: CallLog | None = None,
) -> str | None:
    """The one-line message for a call that never got an HTTP answer; None for any other failure."""
    from updater.values import tls_hint

    if isinstance(exc, requests.exceptions.SSLError):
        return f"{label}: TLS verification failed for {api} ({action}); {tls_hint(ca_bundle)}"
    if not isinstance(exc, requests.RequestException):
        return None
    kind = _transport_kind(exc)
    known = log if log is not None and log.last is not None and log.last.status is None else None
    if (
        known is not None
        and known.last is not None
        and known.last.failure in ("connect", "timeout", "dropped")
    ):
        kind = known.last.failure
    tried = ""
    if known is not None:
        tried = known.tried()
        why = known.why_stopped()
        tried = f"; {tried}" + (f" ({why})" if why and known.stop == "deadline" else "")
    if kind == "connect":
        return (
            f"{label}: cannot reach {api} ({action}: {_reason(exc)}, no connection made{tried}); "
            "check -api-endpoint, the network and any proxy"
        )
    if kind in ("timeout", "dropped"):
        what = "did not answer in time" if kind == "timeout" else "closed the connection without answering"
        method = known.method if known is not None else ""
        if method in ("GET", "HEAD", "OPTIONS"):
            return f"{label}: {api} accepted the request but {what} ({action}{tried}); rerun later"
        return (
            f"{label}: {api} accepted the request but {what} ({action}{tried}); the server may have carried "
            f"the {method or 'request'} out; {CHECK}"
        )
    return f"{label}: the request to {api} failed ({action}: {_reason(exc)}{tried}); rerun later"


def _transport_kind(exc: Exception) -> str:
    """connect / timeout / dropped / other, from a requests exception and its urllib3 cause."""
    from urllib3.exceptions import NewConnectionError, ProtocolError, ReadTimeoutError

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "timeout"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "dropped"
    cause: Any = exc.args[0] if exc.args else None
    reason = getattr(cause, "reason", cause)
    if isinstance(reason, NewConnectionError):
        return "connect"
    if isinstance(reason, ReadTimeoutError):
        return "timeout"
    if isinstance(reason, ProtocolError) or isinstance(cause, ProtocolError):
        return "dropped"
    return "other"


def _reason(exc: Exception) -> str:
    """A few words for a transport failure: 'connection refused', 'name not resolved', ..."""
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text or "resolve" in text:
        return "host name not resolved"
    if "timed out" in text:
        return "timed out"
    return type(exc).__name__


def checked(message: str, finding: str) -> str:
    """`message` with its advice to check whether a write took effect replaced by what was found."""
    if CHECK in message:
        return message.replace(CHECK, f"{finding}; rerun")
    return f"{message} ({finding})"
