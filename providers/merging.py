"""Merge when checks pass, and waiting until the pull request lands: one policy for every provider.

`land()` is what the core calls after opening (or reusing) the pull request:

- `-merge-when=now` (the default) with `-merge-pull-request`: `adapter.merge()` right away, exactly
  as before this module existed (one request, docs/benchmarks.md);
- `-merge-when=checks-pass`: the forge's own auto-merge where the adapter has one
  (`adapter.auto_merge()`: GitHub, GitLab, Bitbucket Data Center 8.15+), which answers "merged" (the
  forge merged at once, or the adapter fell back to a direct merge because there was nothing to wait
  for), "auto-enabled" (the forge merges it when its checks pass) or "unsupported" (no auto-merge
  here: Bitbucket Cloud, an older Data Center, auto-merge switched off for the repository). On
  "unsupported" the tool waits for the checks itself and merges (`adapter.merge_state()`, then
  `adapter.merge()`), within `-wait`; with no wait it looks once. While the forge reports no check
  at all, it merges only after NO_CHECKS_GRACE (CI may not have reported yet);
- `-wait=DURATION`: poll `adapter.merge_state()` until the pull request is merged (success), closed,
  its checks fail or auto-merge is switched off (NotMerged, exit 3), or the time is up
  (NotMergedYet, exit 4).

Polls back off: the first after FIRST_POLL seconds, each next one twice as late, never more than
MAX_POLL apart, the last one cut to end at the deadline (and one final look there). Time comes from
a clock with `monotonic()` and `sleep()` (the `time` module), so tests pass one that only pretends.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from providers.base import MergeState, PullRequest
from updater.errors import NotMerged, NotMergedYet

FIRST_POLL = 2.0  # seconds before the first look at the pull request
MAX_POLL = 60.0  # seconds: the longest gap between two looks
# Seconds the tool keeps waiting, when it merges itself, while the forge reports no check at all:
# CI posts its first status some seconds after the push, and merging before then skips the checks.
NO_CHECKS_GRACE = 30.0
WHEN = ("now", "checks-pass")


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float, /) -> None: ...


def land(
    adapter: Any,
    pr: PullRequest,
    *,
    merge: bool,
    when: str = "now",
    method: str = "merge",
    wait: float = 0.0,
    clock: Clock | None = None,
    log: Any = None,
) -> str:
    """Merge (now, or when checks pass) and/or wait; the merge status for the results.

    Raises NotMerged / NotMergedYet (carrying that status) when the pull request did not land, and the
    adapter's ProviderError when the merge or auto-merge was refused.
    """
    clock = clock or time
    name = _forge(adapter)
    info = getattr(log, "info", None) or (lambda _m: None)
    if merge and when == "now":
        adapter.merge(pr, method)
        return "merged"
    if merge and when == "checks-pass":
        enable = getattr(adapter, "auto_merge", None)
        status = enable(pr, method) if enable is not None else "unsupported"
        if status == "merged":
            return "merged"
        if status == "auto-enabled":
            info(f"{name} merges pull request #{pr.number} when its checks pass (auto-merge enabled)")
            if wait <= 0:
                return "auto-enabled"
            return _wait(adapter, pr, wait, clock, info, auto=True)
        if wait > 0:
            info(f"waiting up to {_span(wait)} for the checks of #{pr.number} to pass, then merging it")
        return _wait(adapter, pr, wait, clock, info, merge_with=method)
    if wait > 0:
        return _wait(adapter, pr, wait, clock, info)
    return "not-requested"


def _wait(
    adapter: Any,
    pr: PullRequest,
    wait: float,
    clock: Clock,
    info: Any,
    *,
    auto: bool = False,
    merge_with: str | None = None,
) -> str:
    """Look at the pull request until it lands, or will not, or `wait` seconds have passed."""
    name = _forge(adapter)
    started = clock.monotonic()
    deadline = started + max(0.0, wait)
    delay = FIRST_POLL
    looks = 0
    while True:
        state: MergeState = adapter.merge_state(pr)
        looks += 1
        if state.state == "merged":
            return "merged"
        if state.state == "closed":
            raise NotMerged(
                f"pull request #{pr.number} was closed without being merged ({pr.url}); nothing landed",
                "closed",
            )
        if state.checks == "failed":
            raise NotMerged(
                f"the checks of pull request #{pr.number} failed{_detail(state)}, so {name} will not merge "
                f"it; fix them (or rerun the failed ones) and run again with -wait ({pr.url})",
                "checks-failed",
            )
        if merge_with is not None and state.ready:
            # No check reported yet is not "checks passed": CI may not have posted its first status
            # this soon after the push. Merge on "none" only once CI had NO_CHECKS_GRACE to say
            # something (or the wait is over).
            early = clock.monotonic() - started < NO_CHECKS_GRACE and clock.monotonic() < deadline
            if not (state.checks == "none" and early):
                adapter.merge(pr, merge_with)
                return "merged"
        if auto and state.auto_merge is False:
            raise NotMerged(
                f"auto-merge of pull request #{pr.number} was turned off while waiting (by hand, or by "
                f"{name} after a push); it will not be merged on its own ({pr.url})",
                "auto-disabled",
            )
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            if wait <= 0:
                raise NotMergedYet(
                    f"{name} has no auto-merge here and the checks of pull request #{pr.number} have not "
                    f"passed yet{_detail(state)}; pass -wait=DURATION (e.g. -wait=30m) so the tool waits "
                    f"for them and merges it, or rerun once they pass ({pr.url})",
                    "checks-pending",
                )
            pending = "auto-merge stays on" if auto else "it is still open"
            raise NotMergedYet(
                f"pull request #{pr.number} was not merged within -wait={_span(wait)} ({looks} looks"
                f"{_detail(state, ', ')}); {pending}: run again with a longer -wait ({pr.url})",
                "timed-out",
            )
        pause = min(delay, remaining)
        clock.sleep(pause)
        delay = min(delay * 2, MAX_POLL)


def _forge(adapter: Any) -> str:
    return {
        "github": "GitHub",
        "gitlab": "GitLab",
        "bitbucket-cloud": "Bitbucket Cloud",
        "bitbucket-server": "Bitbucket Data Center",
    }.get(str(getattr(adapter, "name", "")), "the provider")


def _detail(state: MergeState, sep: str = ": ") -> str:
    return f"{sep}{state.detail}" if state.detail else ""


def _span(seconds: float) -> str:
    """90 → 1m30s, 3600 → 1h, 2.5 → 2.5s: the way -wait is written."""
    if seconds < 60:
        return f"{seconds:g}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n) or "0s"
