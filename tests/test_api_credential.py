"""One credential for git, another for the provider's API (issue 11 item 3), and GitLab OAuth2 tokens.

GitLab's CI_JOB_TOKEN can push (when the project allows Git push requests from job tokens) but no
merge-request endpoint takes it: -api-token-file / UPDATE_GITOPS_REPO_API_TOKEN give the API its own
token while git keeps the job token, and a job token alone is refused before anything is written.
An OAuth2 access token (GITLAB_OAUTH_TOKEN, or UPDATE_GITOPS_REPO_TOKEN_TYPE=oauth for a source whose
name does not say) goes to the API as Bearer and to git with the username oauth2.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TOOL, run_tool
from tests.fakes.gitlab import MAINTAINER, FakeGitLab
from tests.gitserver import GitServer, clone, copy_fixture, make_home, run_git
from tests.test_secret_hygiene import ArgvWatcher
from updater import flags
from updater.credentials import find_api_credential, find_credential
from updater.errors import UsageError
from updater.remote import resolve_remote
from updater.values import parse_origin

JOB_TOKEN = "glcbt-64_JobTokenForGitOnly0123456789"
API_TOKEN = "glpat-ApiTokenForMergeRequests0123"
OAUTH_TOKEN = "5f0c1d2e3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d"  # no documented prefix
ORIGIN = "https://gitlab.example.com/acme/gitops.git"
REPO = "acme/hello-world-gitops"
REV = "9c6ab68e75bec86422bb572ba904e5b853e32808"
ARGS = [f"-git-revision={REV}", "-substitute=imageName=registry.example.com/acme/app@sha256:1", "-verbose"]


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credential anywhere but what a test sets: an empty HOME, none of the variables."""
    env = make_home(tmp_path)
    for key in ("HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_NOSYSTEM"):
        monkeypatch.setenv(key, env[key])
    for name in list(os.environ):
        if name.startswith(("UPDATE_GITOPS_REPO_", "GITLAB_", "GL_", "CI_", "BITBUCKET_", "GITHUB_", "GH_")):
            monkeypatch.delenv(name)


def git_basic(auth_env: dict[str, str]) -> str:
    """user:token of the Authorization header git is given through GIT_CONFIG_* variables."""
    [header] = [v for v in auth_env.values() if v.startswith("Authorization: Basic ")]
    return base64.b64decode(header.split()[-1]).decode()


# -- which credential goes where --------------------------------------------------------------------------


def test_git_keeps_the_job_token_and_the_api_gets_its_own(
    clean: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_JOB_TOKEN", JOB_TOKEN)
    monkeypatch.setenv("UPDATE_GITOPS_REPO_API_TOKEN", API_TOKEN)
    remote = resolve_remote(flags.parse(["-git-revision=1"]), ORIGIN)
    assert remote.credential is not None and remote.credential.kind == "job-token"
    assert remote.api_credential is not None
    assert (remote.api_credential.source, remote.api_credential.secret) == (
        "UPDATE_GITOPS_REPO_API_TOKEN",
        API_TOKEN,
    )
    assert git_basic(remote.auth_env) == f"gitlab-ci-token:{JOB_TOKEN}"
    every = "\n".join(remote.auth_env.values())
    api_b64 = base64.b64encode(f"gitlab-ci-token:{API_TOKEN}".encode()).decode()
    assert API_TOKEN not in every and api_b64 not in every  # git never sees the API's token
    assert JOB_TOKEN not in every  # only inside the Basic header, base64-encoded, in the environment


def test_without_an_api_token_the_api_uses_gits_credential(
    clean: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", API_TOKEN)
    remote = resolve_remote(flags.parse(["-git-revision=1"]), ORIGIN)
    assert remote.api_credential is remote.credential
    assert remote.credential is not None and remote.credential.source == "GITLAB_TOKEN"


def test_api_token_file_beats_the_variable(
    clean: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "api-token").write_text(f"{API_TOKEN}\n")
    monkeypatch.setenv("UPDATE_GITOPS_REPO_API_TOKEN", "glpat-from-the-variable-000")
    found = find_api_credential("gitlab", str(tmp_path / "api-token"))
    assert found is not None and (found.secret, found.kind) == (API_TOKEN, "token")
    assert found.source == f"-api-token-file {tmp_path / 'api-token'}"
    assert find_api_credential("gitlab") is not None  # the variable, without the flag
    monkeypatch.delenv("UPDATE_GITOPS_REPO_API_TOKEN")
    assert find_api_credential("gitlab") is None


@pytest.mark.parametrize("problem", ["missing", "empty"])
def test_an_unusable_api_token_file_is_a_usage_error(clean: None, tmp_path: Path, problem: str) -> None:
    path = tmp_path / "api-token"
    if problem == "empty":
        path.write_text("\n")
    with pytest.raises(UsageError, match="-api-token-file"):
        find_api_credential("gitlab", str(path))


def test_api_token_file_is_a_flag(clean: None) -> None:
    assert flags.parse(["-api-token-file=/run/secrets/api"]).api_token_file == "/run/secrets/api"
    assert "-api-token-file" in flags.usage() and "GITLAB_OAUTH_TOKEN" in flags.usage()


def test_bitbucket_cloud_api_token_is_an_atlassian_api_token_with_the_email(
    clean: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPDATE_GITOPS_REPO_API_TOKEN", "ATATT3xFfGF0-api-token")
    bare = find_api_credential("bitbucket-cloud")
    assert bare is not None and bare.kind == "access-token"
    monkeypatch.setenv("BITBUCKET_EMAIL", "ci@example.com")
    with_email = find_api_credential("bitbucket-cloud")
    assert with_email is not None and (with_email.kind, with_email.api_username) == (
        "api-token",
        "ci@example.com",
    )


# -- OAuth2 tokens ------------------------------------------------------------------------------------------


def test_gitlab_oauth_token_variable_is_an_oauth_token_for_git_user_oauth2(
    clean: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITLAB_OAUTH_TOKEN", OAUTH_TOKEN)
    monkeypatch.setenv("CI_JOB_TOKEN", JOB_TOKEN)  # GITLAB_OAUTH_TOKEN comes first
    # GitLab takes an OAuth token over git only with the username oauth2, whatever origin's URL says.
    remote = resolve_remote(
        flags.parse(["-git-revision=1"]), "https://someone@gitlab.example.com/acme/gitops.git"
    )
    assert remote.credential is not None and remote.credential.kind == "oauth"
    assert git_basic(remote.auth_env) == f"oauth2:{OAUTH_TOKEN}"


def test_token_type_marks_the_tools_own_token_as_oauth(clean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPDATE_GITOPS_REPO_TOKEN", OAUTH_TOKEN)
    monkeypatch.setenv("UPDATE_GITOPS_REPO_TOKEN_TYPE", "oauth")
    found = find_credential(parse_origin(ORIGIN), "gitlab")
    assert found is not None and found.kind == "oauth"
    monkeypatch.setenv("UPDATE_GITOPS_REPO_API_TOKEN", OAUTH_TOKEN)
    api = find_api_credential("gitlab")
    assert api is not None and api.kind == "oauth"
    # Bitbucket Cloud takes OAuth tokens as its access tokens: Bearer, git user x-token-auth.
    bitbucket = find_credential(parse_origin("https://bitbucket.org/acme/gitops.git"), "bitbucket-cloud")
    assert bitbucket is not None and bitbucket.kind == "access-token"


def test_token_type_leaves_a_variable_that_names_its_kind_alone(
    clean: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", API_TOKEN)
    monkeypatch.setenv("UPDATE_GITOPS_REPO_TOKEN_TYPE", "oauth")
    found = find_credential(parse_origin(ORIGIN), "gitlab")
    assert found is not None and found.kind == "token"


def test_an_unknown_token_type_is_a_usage_error(clean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPDATE_GITOPS_REPO_TOKEN_TYPE", "jwt")
    with pytest.raises(UsageError, match="UPDATE_GITOPS_REPO_TOKEN_TYPE=jwt: use one of token, oauth"):
        find_credential(parse_origin(ORIGIN), "gitlab")


# -- the whole run: real git server, fake GitLab -------------------------------------------------------------


@pytest.fixture
def gitlab(git_server: GitServer, tmp_path: Path) -> Iterator[tuple[FakeGitLab, Path, dict[str, str]]]:
    """A repository git reaches only as gitlab-ci-token with the job token (the project allows Git push
    requests from job tokens); the fake GitLab knows the API token, the OAuth token and the job token."""
    git_server.set_credentials(credentials=[("gitlab-ci-token", JOB_TOKEN)])
    url = git_server.create_repo(f"{REPO}.git", copy_fixture("hello-world", tmp_path / "seed"))
    checkout = clone(url, tmp_path / "checkout", token=JOB_TOKEN, user="gitlab-ci-token", detached=True)
    with FakeGitLab() as fake:
        fake.add_token(API_TOKEN, "ci-bot")
        fake.add_token(OAUTH_TOKEN, "ci-bot", kind="oauth")
        fake.add_token(JOB_TOKEN, "ci-bot", kind="job")
        fake.add_repo(REPO, members={"ci-bot": MAINTAINER})
        env = {**make_home(tmp_path), "CI_JOB_TOKEN": JOB_TOKEN}
        yield fake, checkout, env


@pytest.mark.parametrize("api", ["variable", "oauth-file"])
def test_job_token_pushes_and_the_api_token_opens_the_merge_request(
    gitlab: tuple[FakeGitLab, Path, dict[str, str]], git_server: GitServer, tmp_path: Path, api: str
) -> None:
    fake, checkout, env = gitlab
    args = [*ARGS, "-scm-provider=gitlab", f"-api-endpoint={fake.api_url}"]
    if api == "variable":
        env["UPDATE_GITOPS_REPO_API_TOKEN"] = API_TOKEN
        header, value = "private-token", API_TOKEN
    else:
        (tmp_path / "api-token").write_text(OAUTH_TOKEN + "\n")
        args.append(f"-api-token-file={tmp_path / 'api-token'}")
        env["UPDATE_GITOPS_REPO_TOKEN_TYPE"] = "oauth"  # the job token's variable names its kind: still git's
        header, value = "authorization", f"Bearer {OAUTH_TOKEN}"
    marker = f"API_CREDENTIAL_RUN={os.getpid()}-{time.monotonic_ns()}"
    env[marker.split("=")[0]] = marker.split("=")[1]
    with ArgvWatcher(marker) as watcher:
        done = subprocess.run(
            [TOOL, *args], cwd=checkout, env=env, capture_output=True, text=True, timeout=120, check=False
        )
    assert done.returncode == 0, done.stderr

    [mr] = fake.merge_requests
    assert done.stdout == f"{mr['web_url']}\n"
    assert (mr["source_branch"], mr["target_branch"]) == (f"update-to-commit-{REV}", "main")
    # git pushed as gitlab-ci-token with the job token (the server accepts nothing else) ...
    [push] = git_server.push_requests(f"{REPO}.git")
    assert push.user == "gitlab-ci-token"
    assert git_server.rev(f"{REPO}.git", f"update-to-commit-{REV}") is not None
    # ... and every API request carried the API's token, never the job token.
    # (The API's own credential is proven by one read of the project before anything is pushed.)
    project = REPO.replace("/", "%2F")
    assert [(c.method, c.path.split("/projects/", 1)[-1]) for c in fake.requests] == [
        ("GET", project),
        ("GET", f"{project}/merge_requests"),
        ("POST", f"{project}/merge_requests"),
    ]
    for call in fake.requests:
        assert call.request_headers[header] == value
        assert "job-token" not in call.request_headers
        other = "authorization" if header == "private-token" else "private-token"
        assert other not in call.request_headers
    git_children = [c for c in watcher.seen if " push" in c or "git-remote-http" in c]
    assert git_children, "the watcher saw no git network child"
    for secret in (JOB_TOKEN, API_TOKEN, OAUTH_TOKEN):
        assert secret not in done.stdout + done.stderr
        assert all(secret not in argv for argv in watcher.seen)


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_job_token_alone_is_refused_before_anything_is_written(
    gitlab: tuple[FakeGitLab, Path, dict[str, str]], git_server: GitServer, dry_run: bool
) -> None:
    fake, checkout, env = gitlab
    args = [
        *ARGS,
        "-scm-provider=gitlab",
        f"-api-endpoint={fake.api_url}",
        *(["-dry-run"] if dry_run else []),
    ]
    run = run_tool(args, checkout, env)
    assert run.returncode == 1
    [line] = run.error_lines
    assert "a CI job token (CI_JOB_TOKEN) cannot open merge requests" in line
    assert "GITLAB_TOKEN" in line and "UPDATE_GITOPS_REPO_API_TOKEN" in line and "-api-token-file" in line
    assert "-create-pull-request=false" in line and JOB_TOKEN not in run.stderr
    assert fake.requests == []  # said before asking GitLab anything ...
    assert git_server.push_requests(f"{REPO}.git") == []  # ... before pushing ...
    status = run_git("status", "--porcelain", cwd=checkout, env=env).stdout.decode()
    assert status == ""  # ... and before writing a file


def test_a_job_token_alone_pushes_without_a_merge_request(
    gitlab: tuple[FakeGitLab, Path, dict[str, str]], git_server: GitServer
) -> None:
    fake, checkout, env = gitlab
    run = run_tool([*ARGS, "-scm-provider=gitlab", "-create-pull-request=false"], checkout, env)
    assert run.returncode == 0, run.stderr
    [push] = git_server.push_requests(f"{REPO}.git")
    assert push.user == "gitlab-ci-token"
    assert git_server.rev(f"{REPO}.git", f"update-to-commit-{REV}") is not None
    assert fake.requests == [] and JOB_TOKEN not in run.stderr


def test_a_separate_api_token_that_does_not_work_fails_before_the_push(
    gitlab: tuple[FakeGitLab, Path, dict[str, str]], git_server: GitServer
) -> None:
    fake, checkout, env = gitlab
    env["UPDATE_GITOPS_REPO_API_TOKEN"] = "glpat-revoked-0123456789"
    run = run_tool([*ARGS, "-scm-provider=gitlab", f"-api-endpoint={fake.api_url}"], checkout, env)
    assert run.returncode == 1
    [line] = run.error_lines
    assert "GitLab rejected the token from UPDATE_GITOPS_REPO_API_TOKEN (401" in line
    assert "glpat-revoked-0123456789" not in run.stderr
    assert len(fake.requests) == 1  # the one read that proves the API's credential ...
    assert git_server.push_requests(f"{REPO}.git") == []  # ... before anything is pushed
    assert run_git("status", "--porcelain", cwd=checkout, env=env).stdout.decode() == ""
