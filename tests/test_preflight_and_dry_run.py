"""Known before anything is written: configuration the forge needs, plain-http refusals, flag errors in
JSON, and a dry run that shows exactly what the real run would write and open (issues 10 and 13)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import identity, run_tool, snapshot
from tests.fakes.github import FakeGitHub
from tests.gitserver import DEFAULT_TOKEN, GitServer, clean_env, clone, copy_fixture, make_home
from updater.errors import UsageError
from updater.remote import is_loopback, refuse_plain_http

REV = "5d1e3a9f0c2b4d6e8f0a1b2c3d4e5f60718293a4"
IMAGE = "registry.example.com/acme/app@sha256:" + "ab" * 32
ARGS = [f"-git-revision={REV}", f"-substitute=imageName={IMAGE}"]
REPO = "acme/hello-world-gitops"
BRANCH = f"update-to-commit-{REV}"


@pytest.fixture
def world(git_server: GitServer, tmp_path: Path) -> Iterator[tuple[FakeGitHub, Path, dict[str, str]]]:
    url = git_server.create_repo(f"{REPO}.git", copy_fixture("hello-world", tmp_path / "seed"))
    with FakeGitHub() as fake:
        fake.add_token(DEFAULT_TOKEN)
        fake.add_repo(REPO, git_dir=git_server.repo_dir(f"{REPO}.git"))
        env = {**make_home(tmp_path), "GITHUB_TOKEN": DEFAULT_TOKEN}
        yield fake, clone(url, tmp_path / "checkout", token=DEFAULT_TOKEN, detached=True), env


# -- configuration errors surface before anything is written or pushed -------------------------------


def test_no_token_for_the_api_fails_before_writing_or_pushing(
    world: tuple[FakeGitHub, Path, dict[str, str]], git_server: GitServer, tmp_path: Path
) -> None:
    fake, checkout, env = world
    # git has a credential (~/.git-credentials from clone), the API has none: GITHUB_TOKEN is gone and
    # the stored one is for another host.
    env = {**make_home(tmp_path / "elsewhere")}
    before = snapshot(checkout)
    run = run_tool([*ARGS, "-scm-provider=github", f"-api-endpoint={fake.api_url}"], checkout, env)
    assert run.returncode == 1, run.stderr
    [line] = run.error_lines
    assert "no token for the GitHub API" in line
    assert snapshot(checkout) == before
    assert git_server.rev(f"{REPO}.git", BRANCH) is None
    assert fake.requests == []


def test_an_origin_without_a_derivable_api_endpoint_fails_before_pushing(
    git_server: GitServer, tmp_path: Path
) -> None:
    git_server.create_repo("acme/local.git", copy_fixture("hello-world", tmp_path / "seed"))
    bare = git_server.repo_dir("acme/local.git")
    checkout = tmp_path / "co"
    subprocess.run(["git", "clone", "-q", str(bare), str(checkout)], check=True, env=clean_env())
    env = {**make_home(tmp_path), "GITHUB_TOKEN": DEFAULT_TOKEN}
    before = snapshot(checkout)
    run = run_tool(ARGS, checkout, env)
    assert run.returncode == 1, run.stderr
    [line] = run.error_lines
    assert "cannot derive the GitHub API endpoint from a local origin" in line
    assert "guessed github" in run.stderr  # the provider was a guess, and the run says so
    assert snapshot(checkout) == before
    branches = subprocess.run(
        ["git", "-C", str(bare), "branch", "--list", BRANCH], capture_output=True, text=True, check=True
    )
    assert branches.stdout == ""


def test_a_provider_named_by_the_host_is_not_called_a_guess(
    world: tuple[FakeGitHub, Path, dict[str, str]],
) -> None:
    fake, checkout, env = world
    run = run_tool([*ARGS, "-scm-provider=github", f"-api-endpoint={fake.api_url}"], checkout, env)
    assert run.returncode == 0, run.stderr
    assert "guessed" not in run.stderr


# -- the token never crosses the network in clear unless asked ----------------------------------------


def test_a_plain_http_api_endpoint_elsewhere_is_refused_before_pushing(
    world: tuple[FakeGitHub, Path, dict[str, str]], git_server: GitServer
) -> None:
    _, checkout, env = world
    before = snapshot(checkout)
    run = run_tool([*ARGS, "-api-endpoint=http://api.example.test/api/v3"], checkout, env)
    assert run.returncode == 2, run.stderr
    [line] = run.error_lines
    assert "plain http" in line and "-allow-insecure-http" in line and "api.example.test" in line
    assert snapshot(checkout) == before
    assert git_server.rev(f"{REPO}.git", BRANCH) is None


def test_a_plain_http_origin_elsewhere_is_refused_when_a_token_would_be_sent(tmp_path: Path) -> None:
    checkout = tmp_path / "co"
    seed = copy_fixture("hello-world", checkout)
    env = clean_env()
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "seed"]):
        subprocess.run(["git", *args], cwd=seed, check=True, env={**env, **identity()})
    subprocess.run(
        ["git", "remote", "add", "origin", "http://git.example.test/acme/r.git"], cwd=checkout, check=True
    )
    before = snapshot(checkout)
    run = run_tool(
        [*ARGS, "-create-pull-request=false"], checkout, {**make_home(tmp_path), "GITHUB_TOKEN": "t0ken"}
    )
    assert run.returncode == 2, run.stderr
    [line] = run.error_lines
    assert "origin http://git.example.test is plain http" in line and "t0ken" not in run.stderr
    assert snapshot(checkout) == before


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("[::1]", True),
        ("localhost", True),
        ("git.localhost", True),
        ("10.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_is_told_without_asking_dns(host: str, local: bool) -> None:
    assert is_loopback(host) is local


def test_plain_http_is_allowed_to_this_machine_or_when_asked() -> None:
    refuse_plain_http("http://127.0.0.1:8080/api/v3", "the API endpoint", allowed=False)
    refuse_plain_http("https://api.example.com", "the API endpoint", allowed=False)
    refuse_plain_http("http://api.example.com", "the API endpoint", allowed=True)
    with pytest.raises(UsageError, match="plain http"):
        refuse_plain_http("http://user:secret@api.example.com", "origin", allowed=False)
    try:
        refuse_plain_http("http://user:secret@api.example.com", "origin", allowed=False)
    except UsageError as exc:
        assert "secret" not in str(exc)


# -- -output=json for every failure ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["-output=json", "-no-such-flag"],
        ["-no-such-flag", "-output=json"],
        ["--output", "json", "-push-attempts=0"],
        ["-output=json", "-merge-method=octopus"],
        ["-output=json", "-git-revision"],
    ],
)
def test_flag_errors_print_the_json_object_with_error(tmp_path: Path, args: list[str]) -> None:
    run = run_tool(args, tmp_path, clean_env())
    assert run.returncode == 2
    data = json.loads(run.stdout)
    assert data["exit_code"] == 2 and data["error"] and data["error"] in run.stderr
    assert data["operation"] == "unchanged" and data["pushed"] is False


def test_flag_errors_without_json_print_nothing_on_stdout(tmp_path: Path) -> None:
    run = run_tool(["-no-such-flag", "-output=text"], tmp_path, clean_env())
    assert run.returncode == 2 and run.stdout == ""


# -- the dry run shows what the real run would do -----------------------------------------------------


def test_dry_run_shows_exactly_the_bytes_and_the_pull_request_of_the_real_run(
    world: tuple[FakeGitHub, Path, dict[str, str]], git_server: GitServer, tmp_path: Path
) -> None:
    fake, checkout, env = world
    args = [*ARGS, "-scm-provider=github", f"-api-endpoint={fake.api_url}"]
    before = snapshot(checkout)
    dry = run_tool([*args, "-dry-run", "-output=json"], checkout, env)
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert snapshot(checkout) == before and git_server.rev(f"{REPO}.git", BRANCH) is None
    assert report["operation"] == "dry-run" and report["branch"] == BRANCH
    assert report["provider"] == "github"
    assert report["credential"] == {"found": True, "source": "GITHUB_TOKEN"}
    assert report["pull_request"]["operation"] == "would-create"
    assert report["pull_request"]["base"] == "main"
    # Only reads: the open pull requests for the branch.
    assert [c.method for c in fake.requests] == ["GET"]
    assert "-dry-run" not in report["diff"]

    # The same command without -dry-run writes exactly what the diff showed.
    real = run_tool([*args, "-output=json"], checkout, env)
    assert real.returncode == 0, real.stderr
    written = (checkout / "application.yaml").read_text()
    added = [
        line[1:]
        for line in report["diff"].splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    [header] = [line for line in added if line.startswith("# File generated from")]
    assert header == written.splitlines()[1] and "-output=json" in header
    lines = iter(written.splitlines())
    assert all(line in lines for line in added)  # every added line, in order

    # Run again after: the pull request would be reused, and it is named.
    fake.requests.clear()
    again = clone(git_server.repo_url(f"{REPO}.git"), tmp_path / "again", token=DEFAULT_TOKEN, detached=True)
    dry = run_tool([*args, "-dry-run", "-output=json"], again, env)
    assert dry.returncode == 0, dry.stderr
    [pull] = fake.pulls(REPO)
    pr = json.loads(dry.stdout)["pull_request"]
    assert (
        pr["operation"] == "would-reuse"
        and pr["number"] == pull.number
        and pr["url"].endswith(f"/pull/{pull.number}")
    )


def test_dry_run_says_when_no_credential_is_found_and_fails_as_the_real_run_would(
    world: tuple[FakeGitHub, Path, dict[str, str]], tmp_path: Path
) -> None:
    fake, checkout, _ = world
    env = make_home(tmp_path / "elsewhere")
    run = run_tool(
        [*ARGS, "-scm-provider=github", f"-api-endpoint={fake.api_url}", "-dry-run", "-output=json"],
        checkout,
        env,
    )
    assert run.returncode == 1
    report = json.loads(run.stdout)
    assert report["credential"] == {"found": False, "source": None}
    assert "no token for the GitHub API" in report["error"]
    assert report["diff"].startswith("--- a/application.yaml")
    assert "credential: none found" in run.stderr


def test_dry_run_without_pull_request_reports_branch_and_credential(
    world: tuple[FakeGitHub, Path, dict[str, str]],
) -> None:
    fake, checkout, env = world
    run = run_tool([*ARGS, "-create-pull-request=false", "-dry-run"], checkout, env)
    assert run.returncode == 0, run.stderr
    assert f"would commit on branch {BRANCH}" in run.stderr
    assert "credential: from GITHUB_TOKEN" in run.stderr
    assert fake.requests == []


# -- the header stays comment lines whatever the values -----------------------------------------------

PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUJ\nQ2xvdWQ=\n-----END CERTIFICATE-----\n"


def test_a_multi_line_value_keeps_the_header_two_comment_lines(tmp_path: Path) -> None:
    (tmp_path / "ca.yaml.tmpl").write_text("name: x\n")
    run = run_tool(
        ["-compile-only", f"-substitute=ca={PEM}", "-substitute=other=a\u2028b\x85c"], tmp_path, clean_env()
    )
    assert run.returncode == 0, run.stderr
    text = (tmp_path / "ca.yaml").read_text()
    first, second, blank, *rest = text.split("\n")
    assert first == "# Do NOT edit this file directly."
    assert second.startswith("# File generated from ca.yaml.tmpl") and blank == ""
    assert "$'-substitute=ca=-----BEGIN CERTIFICATE-----\\nMIIBszCCAVmgAwIBAgIUJ\\n" in second
    assert "$'-substitute=other=a\\xe2\\x80\\xa8b\\xc2\\x85c'" in second
    assert rest == ["name: x", ""] and yaml.safe_load(text) == {"name": "x"}
    # The quoted word reads back as the very argument in a shell.
    word = re.search(r"\$'-substitute=ca=(?:[^'\\]|\\.)*'", second)[0]  # type: ignore[index]
    echoed = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, check=True).stdout
    assert echoed.decode() == f"-substitute=ca={PEM}"


def test_plain_values_keep_the_original_quoting(tmp_path: Path) -> None:
    (tmp_path / "a.tmpl").write_text("v: $({ .v })\n")
    run = run_tool(["-compile-only", "-substitute=v=it's a\ttab"], tmp_path, clean_env())
    assert run.returncode == 0, run.stderr
    second = (tmp_path / "a").read_text().split("\n")[1]
    assert second.endswith("-compile-only '-substitute=v=it'\"'\"'s a\ttab'")


# -- what git really talks to: rewrites, push URLs and proxies ----------------------------------------


@pytest.mark.parametrize(
    "setting",
    [
        ("url.http://10.255.255.1/.insteadOf", "https://git.example.invalid/"),
        ("url.http://10.255.255.1/.pushInsteadOf", "https://git.example.invalid/"),
        ("remote.origin.pushurl", "http://10.255.255.1/acme/h3.git"),
    ],
    ids=["insteadOf", "pushInsteadOf", "pushurl"],
)
def test_a_rewrite_to_plain_http_elsewhere_is_refused_before_anything_is_written(
    tmp_path: Path, setting: tuple[str, str]
) -> None:
    checkout = tmp_path / "co"
    copy_fixture("hello-world", checkout)
    env = {**make_home(tmp_path), **identity()}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "seed"]):
        subprocess.run(["git", *args], cwd=checkout, check=True, env=env)
    subprocess.run(
        ["git", "remote", "add", "origin", "https://git.example.invalid/acme/h3.git"],
        cwd=checkout,
        check=True,
        env=env,
    )
    subprocess.run(["git", "config", *setting], cwd=checkout, check=True, env=env)
    before = snapshot(checkout)
    run = run_tool([*ARGS, "-create-pull-request=false"], checkout, {**env, "GITHUB_TOKEN": "t0ken"})
    assert run.returncode == 2, run.stderr
    [line] = run.error_lines
    assert "origin http://10.255.255.1 is plain http" in line
    assert snapshot(checkout) == before


def test_plain_http_to_this_machine_through_a_proxy_elsewhere_is_refused(
    world: tuple[FakeGitHub, Path, dict[str, str]], git_server: GitServer
) -> None:
    _, checkout, env = world
    proxied = {**env, "http_proxy": "http://192.0.2.10:3128"}
    run = run_tool([*ARGS, "-create-pull-request=false"], checkout, proxied)
    assert run.returncode == 2
    assert "is plain http through the proxy 192.0.2.10" in run.error_lines[0]
    assert git_server.rev(f"{REPO}.git", BRANCH) is None
    # Named in no_proxy, the host is reached directly: nothing crosses the network.
    run = run_tool(
        [*ARGS, "-create-pull-request=false"], checkout, {**proxied, "no_proxy": "localhost,127.0.0.1"}
    )
    assert run.returncode == 0, run.stderr
