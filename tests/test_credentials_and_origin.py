"""Where the token comes from (spec §6, first found wins) and what the origin URL tells."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.gitserver import make_home
from updater.credentials import find_credential
from updater.errors import UsageError
from updater.gitproc import config_env
from updater.remote import detect_provider
from updater.values import Credential, parse_origin

ORIGIN = parse_origin("https://git.example.com/acme/gitops.git")


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A HOME whose ~/.git-credentials holds a token for git.example.com, as Tekton writes it."""
    env = make_home(
        tmp_path, "https://git.example.com/acme/gitops.git", "tekton", "from-store-1234", style="tekton"
    )
    for key in ("HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_NOSYSTEM"):
        monkeypatch.setenv(key, env[key])
    return tmp_path / "home"


def test_the_tools_own_variable_beats_the_providers(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("UPDATE_GITOPS_REPO_TOKEN", "tool-token-1234")
    monkeypatch.setenv("GITHUB_TOKEN", "gh-token-1234")
    found = find_credential(ORIGIN, "github")
    assert found is not None and (found.secret, found.source) == (
        "tool-token-1234",
        "UPDATE_GITOPS_REPO_TOKEN",
    )


def test_a_token_file_beats_every_variable(
    monkeypatch: pytest.MonkeyPatch, home: Path, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text("file-token-1234\n")
    monkeypatch.setenv("UPDATE_GITOPS_REPO_TOKEN", "tool-token-1234")
    found = find_credential(ORIGIN, "github", str(tmp_path / "token"))
    assert found is not None and found.secret == "file-token-1234"


@pytest.mark.parametrize("problem", ["missing", "empty"])
def test_an_unusable_token_file_is_a_usage_error(tmp_path: Path, problem: str) -> None:
    path = tmp_path / "token"
    if problem == "empty":
        path.write_text("\n")
    with pytest.raises(UsageError, match="-token-file"):
        find_credential(ORIGIN, "github", str(path))


def test_provider_variables_beat_git_credentials(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", "gl-token-1234")
    found = find_credential(ORIGIN, "gitlab")
    assert found is not None and found.source == "GITLAB_TOKEN"


def test_only_the_selected_providers_variables_count(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", "gl-token-1234")
    found = find_credential(ORIGIN, "github")
    assert found is not None and found.source == "git credential helper" and found.secret == "from-store-1234"


def test_git_credentials_beat_the_origin_url(home: Path) -> None:
    origin = parse_origin("https://tekton:url-token-1234@git.example.com/acme/gitops.git")
    found = find_credential(origin, "github")
    assert found is not None and found.source == "git credential helper" and found.secret == "from-store-1234"


def test_git_credentials_are_looked_up_for_the_origin_urls_user(home: Path) -> None:
    origin = parse_origin("https://someone:url-token-1234@git.example.com/acme/gitops.git")
    found = find_credential(origin, "github")
    # The store has no entry for user "someone": git's helper answers nothing, the URL's token is used.
    assert found is not None and found.source == "origin URL" and found.secret == "url-token-1234"


def test_the_origin_url_is_the_last_resort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_home(tmp_path)
    monkeypatch.setenv("HOME", env["HOME"])
    origin = parse_origin("https://bot:url-token-1234@git.example.com/acme/gitops.git")
    found = find_credential(origin, "github")
    assert found is not None and (found.secret, found.username) == ("url-token-1234", "bot")


def test_nothing_anywhere_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", make_home(tmp_path)["HOME"])
    assert find_credential(ORIGIN, "github") is None


def test_gitlab_ci_job_token_is_marked_as_such(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", make_home(tmp_path)["HOME"])
    monkeypatch.setenv("CI_JOB_TOKEN", "job-token-1234")
    found = find_credential(ORIGIN, "gitlab")
    assert (
        found is not None and found.kind == "job-token" and found.git_username("gitlab") == "gitlab-ci-token"
    )


def test_a_bitbucket_cloud_app_password_is_refused_up_front(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", make_home(tmp_path)["HOME"])
    monkeypatch.setenv("BITBUCKET_APP_PASSWORD", "app-pass-1234")
    assert find_credential(ORIGIN, "bitbucket-cloud") is None  # no username: not an app password either
    monkeypatch.setenv("BITBUCKET_USERNAME", "ci-bot")
    with pytest.raises(UsageError, match="app password, which Atlassian removed on 2026-07-28") as caught:
        find_credential(ORIGIN, "bitbucket-cloud")
    assert "app-pass-1234" not in str(caught.value)
    monkeypatch.setenv("BITBUCKET_EMAIL", "ci-bot@example.com")  # then it holds an API token
    found = find_credential(ORIGIN, "bitbucket-cloud")
    assert found is not None and (found.kind, found.api_username) == ("api-token", "ci-bot@example.com")


def _header(env: dict[str, str]) -> str:
    return env["http.extraHeader"]


def test_git_gets_basic_auth_with_the_providers_username() -> None:
    header = _header(Credential("tok-1234", None, "token", "x").git_env("github"))
    assert header == "Authorization: Basic " + base64.b64encode(b"x-access-token:tok-1234").decode()


def test_bitbucket_server_tokens_without_a_user_go_to_git_as_bearer() -> None:
    assert _header(Credential("tok-1234", None, "token", "x").git_env("bitbucket-server")) == (
        "Authorization: Bearer tok-1234"
    )
    with_user = _header(Credential("tok-1234", "ci", "token", "x").git_env("bitbucket-server"))
    assert with_user == "Authorization: Basic " + base64.b64encode(b"ci:tok-1234").decode()


def test_git_config_goes_into_numbered_environment_variables_after_existing_ones() -> None:
    env = config_env({"a.b": "1", "c.d": "2"}, {"GIT_CONFIG_COUNT": "1"})
    assert env == {
        "GIT_CONFIG_KEY_1": "a.b",
        "GIT_CONFIG_VALUE_1": "1",
        "GIT_CONFIG_KEY_2": "c.d",
        "GIT_CONFIG_VALUE_2": "2",
        "GIT_CONFIG_COUNT": "3",
    }


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "path"),
    [
        ("https://github.com/acme/gitops.git", "https", "github.com", None, "acme/gitops"),
        (
            "https://u:t@GitLab.example.com:8443/g/sub/repo.git",
            "https",
            "gitlab.example.com",
            8443,
            "g/sub/repo",
        ),
        ("git@github.com:acme/gitops.git", "ssh", "github.com", None, "acme/gitops"),
        (
            "ssh://git@bitbucket.example.com:7999/proj/repo.git",
            "ssh",
            "bitbucket.example.com",
            7999,
            "proj/repo",
        ),
        ("file:///srv/git/acme/gitops.git", "file", "", None, "srv/git/acme/gitops"),
        ("/srv/git/acme/gitops", "file", "", None, "srv/git/acme/gitops"),
    ],
)
def test_origin_urls_of_every_shape(url: str, scheme: str, host: str, port: int | None, path: str) -> None:
    origin = parse_origin(url)
    assert (origin.scheme, origin.host, origin.port, origin.path) == (scheme, host, port, path)


def test_credentials_in_the_origin_url_are_kept_apart_and_stripped() -> None:
    origin = parse_origin("https://bot:s3cr%40t-1234@git.example.com:8443/a/b.git")
    assert (origin.username, origin.password) == ("bot", "s3cr@t-1234")
    assert origin.url_without_credentials == "https://git.example.com:8443/a/b.git"
    assert "s3cr" not in origin.display and "s3cr" not in repr(origin)


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("https://github.com/a/b.git", "github"),
        ("git@github.com:a/b.git", "github"),
        ("https://gitlab.com/g/sub/r.git", "gitlab"),
        ("https://gitlab.example.com/g/r.git", "gitlab"),
        ("https://bitbucket.org/ws/r.git", "bitbucket-cloud"),
        ("https://git.example.com/scm/PROJ/r.git", "bitbucket-server"),
        ("https://bitbucket.example.com/context/scm/PROJ/r.git", "bitbucket-server"),
        ("https://git.example.com/acme/r.git", "github"),  # the spec's fallback
        ("https://octocorp.ghe.com/acme/r.git", "github"),  # Enterprise Cloud with data residency
        ("git@octocorp.ghe.com:acme/r.git", "github"),
    ],
)
def test_provider_detection(url: str, provider: str) -> None:
    assert detect_provider(parse_origin(url)) == provider


@pytest.mark.parametrize("url", ["https://octocorp.ghe.com/a/b.git", "git@octocorp.ghe.com:a/b.git"])
def test_data_residency_hosts_are_recognised_not_guessed(url: str) -> None:
    from updater.remote import recognise_provider

    assert recognise_provider(parse_origin(url)) == "github"  # no "guessed github" warning
    assert recognise_provider(parse_origin("https://ghe.com.example.org/a/b.git")) is None


def test_gitlab_ci_names_its_own_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_SERVER_HOST", "git.example.com")
    assert detect_provider(parse_origin("https://git.example.com/acme/r.git")) == "gitlab"
