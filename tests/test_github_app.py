"""GitHub Apps: the JWT, the configuration and its place in the credential order, redaction, every refusal
as the fake GitHub answers it (tests/fakes/github_app.py), and the whole run as a CLI subprocess that pushes
with the minted installation token and opens the pull request with it.

Every exchange with the fake is checked against GitHub's OpenAPI description (the committed slice).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from providers.base import ProviderConfig, PullRequestSpec, open_or_reuse
from providers.github import connect
from tests.conftest import run_tool
from tests.fakes.github_app import EXP_PAST, EXP_TOO_FAR, JWT_NOT_DECODED, FakeApp, FakeGitHubApps
from tests.fakes.openapi_check import validate_exchanges
from tests.gitserver import DEFAULT_TOKEN, GitServer, clone, copy_fixture, make_home, token_fingerprint
from tests.test_provider_github import GITHUB_ALLOW, SLICE
from updater import github_app, redact
from updater.errors import ProviderError, UsageError
from updater.values import Credential, parse_origin

REPO = "acme/gitops"
ORIGIN = parse_origin("https://ghe.example.com/acme/gitops.git")
APP_VARIABLES = (
    "GITHUB_APP_ID",
    "GITHUB_APP_CLIENT_ID",
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_APP_PRIVATE_KEY_FILE",
    "GITHUB_APP_INSTALLATION_ID",
    "UPDATE_GITOPS_REPO_TOKEN",
)


@pytest.fixture(autouse=True)
def no_app_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in APP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    redact.forget_all()


@pytest.fixture
def gh() -> Iterator[FakeGitHubApps]:
    with FakeGitHubApps() as fake:
        fake.add_repo(REPO, default_branch="main", branches=["feature"])
        fake.add_repo("acme/other", default_branch="main")
        yield fake
        problems = validate_exchanges(SLICE, fake.requests, allow=GITHUB_ALLOW)
        assert problems == [], "\n".join(problems)


def configure(
    monkeypatch: pytest.MonkeyPatch, app: FakeApp, *, client_id: bool = False, **extra: str
) -> None:
    if client_id:
        monkeypatch.setenv("GITHUB_APP_CLIENT_ID", app.client_id)
    else:
        monkeypatch.setenv("GITHUB_APP_ID", str(app.id))
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", app.private_key_pem)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def mint(fake: FakeGitHubApps, **kwargs: Any) -> Credential:
    app = github_app.configured()
    assert app is not None
    return github_app.mint(app, ORIGIN, fake.api_url, **kwargs)


def refusal(fake: FakeGitHubApps, **kwargs: Any) -> str:
    with pytest.raises(ProviderError) as caught:
        mint(fake, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- the JWT ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("client_id", [False, True])
def test_the_jwt_is_rs256_with_iss_iat_and_exp_as_github_wants_them(
    gh: FakeGitHubApps, monkeypatch: pytest.MonkeyPatch, client_id: bool
) -> None:
    app = gh.add_app()
    configure(monkeypatch, app, client_id=client_id)
    configured = github_app.configured()
    assert configured is not None
    token = configured.jwt(now=1_800_000_000)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(
        token, app.key.public_key(), algorithms=["RS256"], options={"verify_exp": False, "verify_iat": False}
    )
    # Backdated a minute against clock drift, and well inside GitHub's ten-minute limit.
    assert claims["iat"] == 1_800_000_000 - 60 and claims["exp"] == 1_800_000_000 + 540
    assert claims["iss"] == (app.client_id if client_id else str(app.id))


def test_the_client_id_is_preferred_to_the_app_id(
    monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps
) -> None:
    app = gh.add_app()
    configure(monkeypatch, app, GITHUB_APP_CLIENT_ID=app.client_id)
    configured = github_app.configured()
    assert configured is not None and configured.issuer == app.client_id
    assert configured.issuer_source == "GITHUB_APP_CLIENT_ID"


# -- the configuration ---------------------------------------------------------------------------------------


def test_no_app_variables_means_no_app_and_no_sdk_import() -> None:
    import subprocess
    import sys

    assert github_app.configured() is None
    code = (
        "import sys; from updater import github_app; github_app.configured(); "
        "print(*sorted(m for m in sys.modules if m.split('.')[0] in ('jwt', 'cryptography', 'requests', 'github')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == ""


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"GITHUB_APP_ID": "123"}, "GITHUB_APP_ID is set but not the App's private key"),
        (
            {"GITHUB_APP_PRIVATE_KEY_FILE": "/k.pem"},
            "GITHUB_APP_PRIVATE_KEY_FILE is set but not the App's ID",
        ),
        ({"GITHUB_APP_INSTALLATION_ID": "42"}, "GITHUB_APP_INSTALLATION_ID is set but no GitHub App"),
        (
            {"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY_FILE": "/a", "GITHUB_APP_PRIVATE_KEY": "b"},
            "both GITHUB_APP_PRIVATE_KEY_FILE and GITHUB_APP_PRIVATE_KEY are set",
        ),
        ({"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY_FILE": "/nonexistent/k.pem"}, "cannot read it"),
        ({"GITHUB_APP_ID": "1 2", "GITHUB_APP_PRIVATE_KEY": "x"}, "neither a numeric App ID nor a client ID"),
    ],
)
def test_half_a_configuration_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(UsageError, match=expected):
        github_app.configured()


def test_a_key_that_is_no_pem_rsa_key_is_refused_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    monkeypatch.setenv("GITHUB_APP_ID", "123")
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", "not-a-key-s3cr3t-material")
    with pytest.raises(UsageError) as caught:
        github_app.configured()
    assert "GITHUB_APP_PRIVATE_KEY: not a PEM private key" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "ec.pem").write_bytes(ec_key)
    monkeypatch.delenv("GITHUB_APP_PRIVATE_KEY")
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY_FILE", str(tmp_path / "ec.pem"))
    with pytest.raises(UsageError, match="not an RSA private key"):
        github_app.configured()


@pytest.mark.parametrize("spelling", ["file", "pem", "escaped", "base64"])
def test_the_key_is_read_from_a_file_or_from_the_variable_in_common_spellings(
    monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps, tmp_path: Path, spelling: str
) -> None:
    app = gh.add_app()
    pem = app.private_key_pem
    monkeypatch.setenv("GITHUB_APP_ID", str(app.id))
    if spelling == "file":
        (tmp_path / "app.pem").write_text(pem)
        monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY_FILE", str(tmp_path / "app.pem"))
    else:
        value = {
            "pem": pem,
            "escaped": pem.replace("\n", "\\n"),
            "base64": base64.b64encode(pem.encode()).decode(),
        }[spelling]
        monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", value)
    configured = github_app.configured()
    assert configured is not None
    jwt.decode(configured.jwt(), app.key.public_key(), algorithms=["RS256"])


def test_the_tools_own_token_comes_before_the_app_and_says_so(
    monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(monkeypatch, gh.add_app())
    assert github_app.configured("/run/secrets/token") is None
    assert "-token-file /run/secrets/token is used: it comes before the GitHub App" in capsys.readouterr().err
    monkeypatch.setenv("UPDATE_GITOPS_REPO_TOKEN", "tool-token-1234")
    assert github_app.configured() is None


def test_the_app_comes_before_github_token_in_the_remote(
    monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps
) -> None:
    from updater import flags
    from updater.remote import resolve_remote

    app = gh.add_app()
    gh.install(app, "acme")
    configure(monkeypatch, app)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_ambient_actions_token")
    opts = flags.parse(["-git-revision=abc", f"-api-endpoint={gh.api_url}"])
    remote = resolve_remote(opts, "https://ghe.example.com/acme/gitops.git")
    assert remote.credential is not None
    assert remote.credential.source.startswith(f"GitHub App {app.id} (GITHUB_APP_ID), installation ")
    [minted] = gh.minted_tokens()
    assert remote.credential.secret == minted.token and remote.credential.username == "x-access-token"
    header = remote.auth_env["GIT_CONFIG_VALUE_0"]
    assert (
        header
        == "Authorization: Basic " + base64.b64encode(f"x-access-token:{minted.token}".encode()).decode()
    )
    # Without the App, GITHUB_TOKEN is what the remote uses, as before.
    for name in APP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert resolve_remote(opts, "https://ghe.example.com/acme/gitops.git").credential.source == "GITHUB_TOKEN"  # type: ignore[union-attr]


def test_plain_http_to_another_host_is_refused_before_the_jwt_is_sent(
    monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps
) -> None:
    from updater import flags
    from updater.remote import resolve_remote

    configure(monkeypatch, gh.add_app())
    opts = flags.parse(["-git-revision=abc", "-api-endpoint=http://ghe.example.com/api/v3"])
    with pytest.raises(UsageError, match="plain http"):
        resolve_remote(opts, "https://ghe.example.com/acme/gitops.git")
    assert gh.requests == []


# -- minting, and every refusal ------------------------------------------------------------------------------


def test_the_installation_is_found_from_the_repository_and_one_token_is_minted_for_it(
    monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps
) -> None:
    app = gh.add_app()
    installation = gh.install(app, "acme")
    configure(monkeypatch, app)
    credential = mint(gh)
    [minted] = gh.minted_tokens()
    assert minted.installation is installation and minted.repositories == {"gitops"}
    assert credential.secret == minted.token and credential.secret.startswith("ghs_")
    assert [(c.method, c.path) for c in gh.requests] == [
        ("GET", "/repos/acme/gitops/installation"),
        ("POST", f"/app/installations/{installation.id}/access_tokens"),
    ]
    assert gh.requests[1].request_json == {"repositories": ["gitops"]}
    assert gh.requests[0].request_headers["Authorization"] == "Bearer ***"


def test_a_given_installation_id_skips_the_lookup(
    monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps
) -> None:
    app = gh.add_app()
    installation = gh.install(app, "acme", repositories=["gitops"])
    configure(monkeypatch, app, client_id=True, GITHUB_APP_INSTALLATION_ID=str(installation.id))
    mint(gh)
    assert [c.path for c in gh.requests] == [f"/app/installations/{installation.id}/access_tokens"]


def test_the_token_works_for_the_rest_api_within_its_repository(
    monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps
) -> None:
    app = gh.add_app("deploy-bot")
    gh.install(app, "acme")
    configure(monkeypatch, app)
    config = ProviderConfig(origin=ORIGIN, credential=mint(gh), api_endpoint=gh.api_url, deadline=2.0)
    outcome = open_or_reuse(connect(config), PullRequestSpec("feature", "main", "Deploy", "body"))
    assert outcome.operation == "created"
    [pull] = gh.pulls(REPO)
    assert pull.user == "deploy-bot[bot]"
    # Scoped to the one repository: another one of the installation is out of its reach.
    other = ProviderConfig(
        origin=parse_origin("https://ghe.example.com/acme/other.git"),
        credential=config.credential,
        api_endpoint=gh.api_url,
        deadline=2.0,
    )
    with pytest.raises(ProviderError, match="404"):
        connect(other).default_branch()


def test_the_adapter_words_an_installation_tokens_refusals_for_an_app(
    monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps
) -> None:
    app = gh.add_app(permissions={"contents": "write", "metadata": "read"})
    gh.install(app, "acme")
    configure(monkeypatch, app)
    credential = mint(gh, need_pull_requests=False)
    adapter = connect(
        ProviderConfig(origin=ORIGIN, credential=credential, api_endpoint=gh.api_url, deadline=2.0)
    )
    with pytest.raises(ProviderError) as caught:
        adapter.create(PullRequestSpec("feature", "main", "Deploy", "body"))
    assert "(403 Resource not accessible by integration): the installation of GitHub App" in str(caught.value)
    assert "lacks the permission pull_requests=write" in str(caught.value)
    [minted] = gh.minted_tokens()
    minted.expires_at = 0  # an hour later
    with pytest.raises(
        ProviderError,
        match=r"rejected the installation token of GitHub App .* expired \(they live one hour\)",
    ):
        adapter.find_open("feature", "main")


def test_not_installed_on_the_repository(monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps) -> None:
    app = gh.add_app()
    gh.install(app, "acme", repositories=["other"])
    configure(monkeypatch, app)
    message = refusal(gh)
    assert message.startswith(
        f"GitHub App {app.id} (GITHUB_APP_ID) is not installed on acme/gitops (404 Not Found;"
    )
    assert (
        "install the App on the repository or its organisation, or set GITHUB_APP_INSTALLATION_ID" in message
    )
    assert gh.minted_tokens() == []


def test_an_unknown_installation_id(monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps) -> None:
    app = gh.add_app()
    configure(monkeypatch, app, GITHUB_APP_INSTALLATION_ID="999")
    message = refusal(gh)
    assert (
        "has no installation 999 (404 Not Found;" in message and "check GITHUB_APP_INSTALLATION_ID" in message
    )


def test_an_installation_that_cannot_reach_the_repository(
    monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps
) -> None:
    app = gh.add_app()
    installation = gh.install(app, "acme", repositories=["other"])
    configure(monkeypatch, app, GITHUB_APP_INSTALLATION_ID=str(installation.id))
    message = refusal(gh)
    assert (
        f"installation {installation.id} of GitHub App {app.id} (GITHUB_APP_ID) cannot reach acme/gitops"
        in message
    )
    assert "There is at least one repository that does not exist or is not accessible" in message
    assert "add the repository to the installation's repository access" in message


def test_a_suspended_installation(monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps) -> None:
    app = gh.add_app()
    gh.install(app, "acme", suspended=True)
    configure(monkeypatch, app)
    assert "(403 This installation has been suspended;" in refusal(gh)


def test_a_key_of_another_app(monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps) -> None:
    app, other = gh.add_app("one"), gh.add_app("two")
    gh.install(app, "acme")
    configure(monkeypatch, app, GITHUB_APP_PRIVATE_KEY=other.private_key_pem)
    message = refusal(gh)
    assert f"(401 {JWT_NOT_DECODED};" in message
    assert "the private key from GITHUB_APP_PRIVATE_KEY is not a current key of that App" in message


def test_an_app_id_github_does_not_know(monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps) -> None:
    app = gh.add_app()
    configure(monkeypatch, app, GITHUB_APP_ID="424242")
    message = refusal(gh)
    assert "GitHub has no GitHub App 424242 (GITHUB_APP_ID) (404 Integration not found;" in message


@pytest.mark.parametrize(("offset", "answer"), [(-700, EXP_TOO_FAR), (+700, EXP_PAST)])
def test_a_clock_that_is_off_is_named(
    monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps, offset: float, answer: str
) -> None:
    app = gh.add_app()
    gh.install(app, "acme")
    configure(monkeypatch, app)
    gh.clock_offset = offset  # GitHub's clock 700 s behind (or ahead of) this machine's
    message = refusal(gh)
    assert f"(401 {answer};" in message
    assert "this machine's clock is off by more than a minute" in message and "NTP" in message


def test_a_clock_a_little_off_still_works(monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps) -> None:
    app = gh.add_app()
    gh.install(app, "acme")
    configure(monkeypatch, app)
    for offset in (-50, +50):
        gh.clock_offset = offset
        mint(gh)
    assert len(gh.minted_tokens()) == 2


@pytest.mark.parametrize(
    ("permissions", "need_pull_requests", "expected"),
    [
        (
            {"contents": "read", "pull_requests": "write"},
            True,
            "lacks Contents: read and write to push the branch (it has read)",
        ),
        (
            {"contents": "write"},
            True,
            "lacks Pull requests: read and write to open the pull request (it has none)",
        ),
        ({"contents": "write", "metadata": "read"}, False, None),
    ],
)
def test_the_tokens_permissions_are_checked_before_anything_is_pushed(
    monkeypatch: pytest.MonkeyPatch,
    gh: FakeGitHubApps,
    permissions: dict[str, str],
    need_pull_requests: bool,
    expected: str | None,
) -> None:
    app = gh.add_app(permissions=permissions)
    gh.install(app, "acme")
    configure(monkeypatch, app)
    if expected is None:
        mint(gh, need_pull_requests=need_pull_requests)
        return
    message = refusal(gh, need_pull_requests=need_pull_requests)
    assert expected in message and "add the permissions in the App's settings" in message


def test_team_reviewers_without_members_permission_warn(
    monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps, capsys: pytest.CaptureFixture[str]
) -> None:
    app = gh.add_app(permissions={"contents": "write", "pull_requests": "write"})
    gh.install(app, "acme")
    configure(monkeypatch, app)
    mint(gh, team_reviewers=True)
    assert "has no Members: read permission" in capsys.readouterr().err


def test_an_unreachable_api_is_one_line(monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps) -> None:
    monkeypatch.setattr(github_app, "RETRIES", 0)
    configure(monkeypatch, gh.add_app())
    app = github_app.configured()
    assert app is not None
    with pytest.raises(
        ProviderError, match=r"cannot reach GET http://127\.0\.0\.1:9/api/v3/repos/acme/gitops/installation"
    ):
        github_app.mint(app, ORIGIN, "http://127.0.0.1:9/api/v3")


def test_the_key_the_jwt_and_the_token_are_redacted(
    monkeypatch: pytest.MonkeyPatch, gh: FakeGitHubApps
) -> None:
    app = gh.add_app()
    gh.install(app, "acme")
    configure(monkeypatch, app)
    configured = github_app.configured()
    assert configured is not None
    token = github_app.mint(configured, ORIGIN, gh.api_url).secret
    signed = configured.jwt()
    key_line = app.private_key_pem.splitlines()[3]
    text = (
        f"key {app.private_key_pem} line {key_line} jwt {signed} token {token} basic "
        + base64.b64encode(f"x-access-token:{token}".encode()).decode()
    )
    cleaned = redact.redact(text)
    for secret in (token, signed, key_line, "PRIVATE KEY-----\nMII"):
        assert secret not in cleaned
    assert repr(configured) == f"App(issuer='{app.id}', installation_id=None)"


# -- the whole run: the CLI as a pipeline runs it --------------------------------------------------------------

REV = "9c6ab68e75bec86422bb572ba904e5b853e32808"
IMAGE = "registry.example.com/acme/hello-world@sha256:75326f3faf8d9e10af99fb3dcbcc69756c4325fd67d806eba7ab2ec2fe04446c"
HELLO = "acme/hello-world-gitops"


@pytest.fixture
def app_run(
    git_server: GitServer, tmp_path: Path
) -> Iterator[tuple[FakeGitHubApps, FakeApp, Path, dict[str, str]]]:
    url = git_server.create_repo(f"{HELLO}.git", copy_fixture("hello-world", tmp_path / "seed"))
    checkout = clone(url, tmp_path / "checkout", token=DEFAULT_TOKEN, detached=True)
    git_server.set_credentials()  # from now on only the tokens the fake mints open the git server
    with FakeGitHubApps(on_token=git_server.allow_token) as fake:
        fake.add_repo(HELLO, git_dir=git_server.repo_dir(f"{HELLO}.git"))
        app = fake.add_app("gitops-bot")
        key = tmp_path / "secrets" / "app.pem"
        key.parent.mkdir()
        key.write_text(app.private_key_pem)
        env = {
            **make_home(tmp_path),
            "GITHUB_APP_CLIENT_ID": app.client_id,
            "GITHUB_APP_PRIVATE_KEY_FILE": str(key),
            "GITHUB_TOKEN": "ghp_ambient_token_nobody_accepts",  # the App comes first
        }
        yield fake, app, checkout, env
        problems = validate_exchanges(SLICE, fake.requests, allow=GITHUB_ALLOW)
        assert problems == [], "\n".join(problems)


def test_cli_pushes_and_opens_the_pull_request_with_one_minted_installation_token(
    app_run: tuple[FakeGitHubApps, FakeApp, Path, dict[str, str]], git_server: GitServer
) -> None:
    fake, app, checkout, env = app_run
    installation = fake.install(app, "acme")
    args = [
        f"-git-revision={REV}",
        f"-substitute=imageName={IMAGE}",
        f"-api-endpoint={fake.api_url}",
        "-verbose",
    ]
    started = time.monotonic()
    run = run_tool(args, checkout, env)
    assert run.returncode == 0, run.stderr
    [pull] = fake.pulls(HELLO)
    assert run.stdout == f"{fake.web_url}/{HELLO}/pull/{pull.number}\n"
    assert pull.user == "gitops-bot[bot]"
    [minted] = fake.minted_tokens()
    assert [(c.method, c.path) for c in fake.requests] == [
        ("GET", f"/repos/{HELLO}/installation"),
        ("POST", f"/app/installations/{installation.id}/access_tokens"),
        ("GET", f"/repos/{HELLO}/pulls"),
        ("POST", f"/repos/{HELLO}/pulls"),
    ]
    # git pushed with the same token the API used.
    [push] = git_server.push_requests(f"{HELLO}.git")
    assert push.token_fingerprint == token_fingerprint(minted.token)
    assert git_server.rev(f"{HELLO}.git", f"update-to-commit-{REV}") is not None
    for secret in (minted.token, app.private_key_pem.splitlines()[2], "BEGIN RSA PRIVATE KEY"):
        assert secret not in run.stdout and secret not in run.stderr
    assert "git authenticates to" in run.stderr and "GitHub App" in run.stderr
    assert time.monotonic() - started < 30


def test_cli_refuses_before_writing_anything_when_the_app_is_not_installed(
    app_run: tuple[FakeGitHubApps, FakeApp, Path, dict[str, str]], git_server: GitServer
) -> None:
    fake, app, checkout, env = app_run
    before = (
        (checkout / "application.yaml").read_bytes() if (checkout / "application.yaml").exists() else None
    )
    run = run_tool(
        [f"-git-revision={REV}", f"-substitute=imageName={IMAGE}", f"-api-endpoint={fake.api_url}"],
        checkout,
        env,
    )
    assert run.returncode == 1
    assert run.error_lines == [
        f"update-gitops-repo: error: GitHub App {app.client_id} (GITHUB_APP_CLIENT_ID) is not installed on "
        f"{HELLO} (404 Not Found; GET {fake.api_url}/repos/{HELLO}/installation): install the App on the "
        "repository or its organisation, or set GITHUB_APP_INSTALLATION_ID"
    ]
    after = (checkout / "application.yaml").read_bytes() if (checkout / "application.yaml").exists() else None
    assert after == before  # nothing rendered onto disk
    assert git_server.push_requests() == [] and fake.minted_tokens() == []


def test_cli_with_a_bad_key_file_is_a_usage_error(
    app_run: tuple[FakeGitHubApps, FakeApp, Path, dict[str, str]], tmp_path: Path
) -> None:
    fake, _app, checkout, env = app_run
    bad = tmp_path / "secrets" / "bad.pem"
    bad.write_text("-----BEGIN RSA PRIVATE KEY-----\nnot really\n-----END RSA PRIVATE KEY-----\n")
    env = {**env, "GITHUB_APP_PRIVATE_KEY_FILE": str(bad)}
    run = run_tool(
        [f"-git-revision={REV}", f"-substitute=imageName={IMAGE}", f"-api-endpoint={fake.api_url}"],
        checkout,
        env,
    )
    assert run.returncode == 2
    assert f"GITHUB_APP_PRIVATE_KEY_FILE {bad}: not a PEM private key" in run.stderr
    assert "not really" not in run.stderr and fake.requests == []


def test_a_wait_longer_than_the_app_tokens_hour_is_warned_about(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fakes.github import FakeGitHub
    from updater import flags, pull_request
    from updater.remote import Remote
    from updater.results import Result
    from updater.values import Credential, parse_origin

    landed: list[float] = []
    monkeypatch.setattr(pull_request, "_land", lambda opts, adapter, pr, result: landed.append(opts.wait))
    with FakeGitHub() as fake:
        fake.add_token("ghs_installation0123456789")
        fake.add_repo("acme/gitops", branches=["main", "deploy"])
        for wait, warned in (("2h", True), ("50m", False)):
            opts = flags.parse(
                ["-git-revision=1", f"-api-endpoint={fake.api_url}", "-base-branch=main", f"-wait={wait}"]
            )
            app = Credential(
                "ghs_installation0123456789", "x-access-token", "token", "GitHub App Iv23x, installation 7"
            )
            remote = Remote(
                parse_origin("https://github.com/acme/gitops.git"), "github", app, {}, "origin", None, app
            )
            forge = pull_request.Forge(opts, remote)
            pull_request.open_and_land(opts, None, forge, [], Result(), "deploy", "deploy\n", "body")  # type: ignore[arg-type]
            err = capsys.readouterr().err
            assert ("longer than the hour a GitHub App installation token lives" in err) is warned
    assert landed == [7200.0, 3000.0]
