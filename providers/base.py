"""The small interface every SCM adapter implements, and the PR logic they all share.

An adapter is one module in this package with a `connect(config) -> Adapter` function; the
registry in `providers/__init__.py` maps -scm-provider names to those modules and imports a
module (and so its SDK) only when that provider is used.

What this package takes from `updater` is the shared values (`updater.values`: Origin, Credential,
tls_hint), the exception types (`updater.errors`) and redaction (`updater.redact`), all leaves that
import nothing back; the core's other modules are never imported here (tests/test_architecture.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from updater.values import Credential, Origin

MergeMethod = Literal["merge", "squash", "rebase"]


@dataclass(frozen=True)
class ProviderConfig:
    """Everything an adapter needs to reach the API; built by the core from flags and environment."""

    origin: Origin
    credential: Credential | None
    api_endpoint: str | None = None  # -api-endpoint; None means derive it from the origin
    timeout: float = 30.0  # seconds, per HTTP call
    deadline: float = 120.0  # seconds, all retries of one call together
    ca_bundle: str | None = None  # path to a PEM bundle; None means the environment's default
    warn: Callable[[str], None] = print  # how an adapter reports a missing capability
    debug: Callable[[str], None] = lambda _msg: None


@dataclass(frozen=True)
class PullRequestSpec:
    head: str
    base: str
    title: str
    body: str
    labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    draft: bool = False


@dataclass
class PullRequest:
    number: int
    url: str  # the web URL a human opens
    title: str
    body: str
    # Adapter-private handle (an SDK object, a version number) so that update/merge need no re-fetch.
    handle: object = field(default=None, repr=False, compare=False)


class Adapter(Protocol):
    """What the core asks of a provider. Each method is as few API calls as the provider allows."""

    name: str

    def default_branch(self) -> str: ...

    def find_open(self, head: str, base: str) -> PullRequest | None: ...

    def create(self, spec: PullRequestSpec) -> PullRequest:
        """Open the PR; apply labels/reviewers/draft where supported, warn (via config.warn) where not."""
        ...

    def update(self, pr: PullRequest, title: str, body: str) -> PullRequest: ...

    def merge(self, pr: PullRequest, method: MergeMethod) -> None:
        """Merge, or raise ProviderError saying why the repository or branch protection refused."""
        ...

    # For -merge-when=checks-pass and -wait (providers/merging.py), looked up with getattr so that an
    # adapter without them still serves the rest:
    #
    #   def auto_merge(self, pr, method) -> str:  "merged" | "auto-enabled" | "unsupported"
    #       Turn the forge's auto-merge on (or merge at once when there is nothing to wait for).
    #   def merge_state(self, pr) -> MergeState:  one look, as few requests as the forge allows.


@dataclass(frozen=True)
class MergeState:
    """One look at a pull request while merging when checks pass or waiting (providers/merging.py).

    state: "open", "merged" or "closed" (declined, superseded: anything that will not merge);
    checks: "passed", "pending", "failed" or "none" (no checks reported), as the forge sums them up;
    ready: the tool may merge it now (checks passed and nothing else blocks, as far as the API says);
    auto_merge: whether the forge's auto-merge is on (None: the adapter cannot tell);
    detail: a short reason for messages ("ci/build failed", "2 builds in progress"), or "".
    """

    state: str
    checks: str = "none"
    ready: bool = False
    auto_merge: bool | None = None
    detail: str = ""


@dataclass(frozen=True)
class Outcome:
    pr: PullRequest
    operation: Literal["created", "reused", "updated"]


def open_or_reuse_plan(
    adapter: Adapter, spec: PullRequestSpec
) -> tuple[Literal["create", "reuse", "update"], PullRequest | None]:
    """What open_or_reuse would do, found with the same read: for -dry-run."""
    existing = adapter.find_open(spec.head, spec.base)
    if existing is None:
        return "create", None
    if existing.title != spec.title or existing.body.strip() != spec.body.strip():
        return "update", existing
    return "reuse", existing


def open_or_reuse(adapter: Adapter, spec: PullRequestSpec) -> Outcome:
    """Reuse the open PR for head → base (refreshing its title/body if they changed), else create one."""
    plan, existing = open_or_reuse_plan(adapter, spec)
    if existing is None:
        return Outcome(adapter.create(spec), "created")
    if plan == "update":
        return Outcome(adapter.update(existing, spec.title, spec.body), "updated")
    return Outcome(existing, "reused")


def opened_after_all(
    adapter: Adapter,
    spec: PullRequestSpec,
    failure: str,
    warn: Callable[[str], None],
    *,
    forge: str,
    noun: str = "pull request",
    sigil: str = "#",
) -> PullRequest:
    """A create whose outcome is unknown (5xx, no answer): the pull request if it was opened after
    all, else ProviderError(`failure`) saying it was not. One more request, on this failure path only;
    labels and reviewers are not applied then."""
    from providers import http
    from updater.errors import ProviderError

    try:
        existing = adapter.find_open(spec.head, spec.base)
    except ProviderError:
        existing = None
    if existing is None:
        raise ProviderError(
            http.checked(failure, f"it did not: no {noun} {spec.head} -> {spec.base} is open")
        )
    warn(
        f"{forge}: opening the {noun} did not come back cleanly ({failure}); it is open after all: "
        f"{sigil}{existing.number}"
    )
    return existing
