"""The test git remote behaves like a real token-protected smart-HTTP host; the fixtures are consistent."""

from __future__ import annotations

import json
import random
import re
import shlex
from pathlib import Path

import pytest

from tests.gitserver import (
    DEFAULT_TOKEN,
    FIXTURES,
    GitServer,
    basic_auth_env,
    clean_env,
    clone,
    copy_fixture,
    git_server,
    git_server_session,
    make_home,
    run_git,
    token_fingerprint,
)

__all__ = ["git_server", "git_server_session"]  # fixtures used here; conftest.py may import them too

IDENTITY = ("-c", "user.name=Test", "-c", "user.email=test@example.com")


def _commit(
    checkout: Path, files: dict[str, bytes | str], env: dict[str, str], message: str = "change"
) -> None:
    for rel, content in files.items():
        target = checkout / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    run_git("add", "--all", cwd=checkout, env=env)
    run_git(*IDENTITY, "commit", "--quiet", "-m", message, cwd=checkout, env=env)


def _push(checkout: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    done = run_git("push", *args, cwd=checkout, env=env, check=False)
    return done.returncode, done.stderr.decode()


def test_clone_with_token_logs_user_and_fingerprint_never_the_token(
    git_server: GitServer, tmp_path: Path
) -> None:
    url = git_server.create_repo("owner/repo", {"app.yaml": "image: old\n"})
    assert url == f"{git_server.url}/owner/repo.git"

    checkout = clone(url, tmp_path / "c", token=DEFAULT_TOKEN, user="ci-bot")
    assert (checkout / "app.yaml").read_text() == "image: old\n"
    # The token went through the environment only: the checkout's config has the bare URL.
    config = (checkout / ".git" / "config").read_text()
    assert DEFAULT_TOKEN not in config and url in config

    by_url = clone(git_server.repo_url_with_token("owner/repo", "someone", DEFAULT_TOKEN), tmp_path / "u")
    assert (by_url / "app.yaml").exists()

    entries = git_server.requests("owner/repo")
    users = {e.user for e in entries if e.authorized}
    assert users == {"ci-bot", "someone"}
    assert {e.token_fingerprint for e in entries if e.authorized} == {token_fingerprint(DEFAULT_TOKEN)}
    assert all(e.service == "git-upload-pack" for e in entries)
    assert DEFAULT_TOKEN not in repr(git_server.log)


def test_push_over_one_mib_goes_chunked_and_lands(git_server: GitServer, tmp_path: Path) -> None:
    url = git_server.create_repo("owner/repo")
    env = clean_env()
    checkout = clone(url, tmp_path / "c", token=DEFAULT_TOKEN)
    blob = random.Random(7).randbytes(3 * 1024 * 1024)  # incompressible, so the pack stays > 1 MiB
    _commit(checkout, {"big.bin": blob}, env)
    env.update(basic_auth_env("x-access-token", DEFAULT_TOKEN, env))

    rc, err = _push(checkout, env, "origin", "HEAD:refs/heads/update-to-commit-abc")
    assert rc == 0, err

    head = run_git("rev-parse", "HEAD", cwd=checkout, env=env).stdout.decode().strip()
    assert git_server.branches("owner/repo")["update-to-commit-abc"] == head
    assert git_server.read("owner/repo", "big.bin", "update-to-commit-abc") == blob
    [push] = [e for e in git_server.push_requests("owner/repo") if e.ref_updates]
    assert push.chunked and push.body_size > 1024 * 1024
    assert push.ref_updates[0].ref == "refs/heads/update-to-commit-abc"
    assert push.ref_updates[0].new == head


def test_wrong_token_is_authentication_failed_rc_128(git_server: GitServer, tmp_path: Path) -> None:
    git_server.create_repo("owner/repo")
    url = git_server.repo_url_with_token("owner/repo", "x-access-token", "not-the-token")
    done = run_git("clone", url, str(tmp_path / "c"), check=False)
    assert done.returncode == 128
    assert "Authentication failed" in done.stderr.decode()
    assert all(e.status == 401 and not e.authorized for e in git_server.requests())


def test_no_token_with_prompts_disabled_fails_rc_128(git_server: GitServer, tmp_path: Path) -> None:
    url = git_server.create_repo("owner/repo")
    done = run_git("clone", url, str(tmp_path / "c"), env=clean_env(GIT_TERMINAL_PROMPT="0"), check=False)
    assert done.returncode == 128
    assert "terminal prompts disabled" in done.stderr.decode()
    [entry] = git_server.requests()
    assert (entry.status, entry.auth_scheme, entry.user) == (401, "none", None)


def test_refused_token_gets_401_although_it_was_accepted(git_server: GitServer, tmp_path: Path) -> None:
    url = git_server.create_repo("owner/repo")
    clone(url, tmp_path / "before", token=DEFAULT_TOKEN)
    git_server.refuse(DEFAULT_TOKEN)
    in_url = git_server.repo_url_with_token("owner/repo", "x-access-token", DEFAULT_TOKEN)
    with pytest.raises(AssertionError, match="Authentication failed"):
        clone(in_url, tmp_path / "after")
    # A refused http.extraHeader is not a credential git can retry, so git asks for one instead.
    with pytest.raises(AssertionError, match="terminal prompts disabled"):
        clone(url, tmp_path / "header", token=DEFAULT_TOKEN)
    last = git_server.requests()[-1]
    assert (last.status, last.authorized, last.token_fingerprint) == (
        401,
        False,
        token_fingerprint(DEFAULT_TOKEN),
    )


def test_exact_user_token_pair_rejects_other_usernames(git_server: GitServer, tmp_path: Path) -> None:
    # Bitbucket-style: the token is only good with its account's username.
    git_server.set_credentials(credentials=[("alice", "bb-token-1234")])
    url = git_server.create_repo("scm/PROJ/repo.git")
    clone(url, tmp_path / "alice", token="bb-token-1234", user="alice")
    for user, token in (("bob", "bb-token-1234"), ("alice", DEFAULT_TOKEN)):
        with pytest.raises(AssertionError, match="Authentication failed"):
            clone(git_server.repo_url_with_token("scm/PROJ/repo", user, token), tmp_path / f"try-{user}")
    assert [e.user for e in git_server.requests() if e.authorized] == ["alice"] * 3


def test_non_fast_forward_push_is_rejected_until_fetched_and_rebased(
    git_server: GitServer, tmp_path: Path
) -> None:
    url = git_server.create_repo("owner/repo", {"app.yaml": "v: 1\n"})
    env = clean_env(**basic_auth_env("u", DEFAULT_TOKEN))
    checkout = clone(url, tmp_path / "c", env=env)
    _commit(checkout, {"app.yaml": "v: 2\n"}, env)
    other = git_server.commit_directly("owner/repo", {"other.yaml": "x: 1\n"}, message="Another pipeline")

    rc, err = _push(checkout, env, "origin", "HEAD:main")
    assert rc == 1 and "[rejected]" in err and "(fetch first)" in err
    run_git("fetch", "--quiet", "origin", cwd=checkout, env=env)
    rc, err = _push(checkout, env, "origin", "HEAD:main")
    assert rc == 1 and "(non-fast-forward)" in err
    assert git_server.rev("owner/repo", "main") == other

    run_git(*IDENTITY, "rebase", "--quiet", "origin/main", cwd=checkout, env=env)
    rc, err = _push(checkout, env, "origin", "HEAD:main")
    assert rc == 0, err
    assert git_server.read("owner/repo", "app.yaml", "main") == b"v: 2\n"


def test_protected_branch_hook_refuses_the_branch_and_allows_others(
    git_server: GitServer, tmp_path: Path
) -> None:
    url = git_server.create_repo("owner/repo", {"app.yaml": "v: 1\n"})
    git_server.protect_branch("owner/repo", "main")
    before = git_server.rev("owner/repo", "main")
    env = clean_env(**basic_auth_env("u", DEFAULT_TOKEN))
    checkout = clone(url, tmp_path / "c", env=env, detached=True)
    _commit(checkout, {"app.yaml": "v: 2\n"}, env)

    rc, err = _push(checkout, env, "origin", "HEAD:refs/heads/main")
    assert rc == 1
    assert "remote: error: GH006: Protected branch update failed for refs/heads/main." in err
    assert "remote: error: Changes must be made through a pull request." in err
    assert "[remote rejected] HEAD -> main (pre-receive hook declined)" in err
    assert git_server.rev("owner/repo", "main") == before

    rc, err = _push(checkout, env, "--force", "origin", "HEAD:refs/heads/main")
    assert rc == 1 and "pre-receive hook declined" in err
    rc, err = _push(checkout, env, "origin", "HEAD:refs/heads/update-to-commit-1")
    assert rc == 0, err
    git_server.unprotect_branch("owner/repo", "main")
    rc, err = _push(checkout, env, "origin", "HEAD:refs/heads/main")
    assert rc == 0, err


@pytest.mark.parametrize("style", ["git", "tekton"])
def test_credential_store_home_authenticates_a_tekton_checkout_and_push(
    git_server: GitServer, tmp_path: Path, style: str
) -> None:
    url = git_server.create_repo("owner/repo", {"app.yaml": "v: 1\n"})
    env = make_home(tmp_path, url, "tekton-sa", DEFAULT_TOKEN, style=style)  # type: ignore[arg-type]
    stored = (Path(env["HOME"]) / ".git-credentials").read_text()
    host = f"127.0.0.1%3a{git_server.port}" if style == "git" else f"127.0.0.1:{git_server.port}"
    assert stored == f"http://tekton-sa:{DEFAULT_TOKEN}@{host}\n"
    assert "helper = store" in (Path(env["HOME"]) / ".gitconfig").read_text()
    fill = run_git(
        "credential", "fill", input=f"protocol=http\nhost=127.0.0.1:{git_server.port}\n\n".encode(), env=env
    )
    assert f"username=tekton-sa\npassword={DEFAULT_TOKEN}\n" in fill.stdout.decode()

    checkout = clone(url, tmp_path / "ws", detached=True, env=env)
    status = run_git("status", "--branch", "--porcelain=2", cwd=checkout, env=env).stdout.decode()
    assert "# branch.head (detached)" in status
    assert (checkout / ".git" / "shallow").exists()
    assert (
        run_git("branch", "--list", cwd=checkout, env=env)
        .stdout.decode()
        .strip()
        .startswith("* (HEAD detached")
    )

    _commit(checkout, {"app.yaml": "v: 2\n"}, env)
    rc, err = _push(checkout, env, "origin", "HEAD:refs/heads/update-to-commit-1")
    assert rc == 0, err
    assert {e.user for e in git_server.push_requests()} == {"tekton-sa"}


def test_nested_paths_urls_without_dot_git_and_file_remotes(git_server: GitServer, tmp_path: Path) -> None:
    gitlab = git_server.create_repo("group/sub/repo", {"a": "gitlab\n"})
    server = git_server.create_repo("scm/PROJ/repo.git", {"a": "bitbucket\n"}, default_branch="master")
    assert gitlab.endswith("/group/sub/repo.git") and server.endswith("/scm/PROJ/repo.git")

    no_suffix = clone(gitlab.removesuffix(".git"), tmp_path / "g", token=DEFAULT_TOKEN)
    assert (no_suffix / "a").read_text() == "gitlab\n"
    bb = clone(server, tmp_path / "b", token=DEFAULT_TOKEN)
    assert run_git("symbolic-ref", "--short", "HEAD", cwd=bb).stdout.decode().strip() == "master"
    listing = run_git("ls-remote", "--symref", gitlab, "HEAD", env=clean_env(**_auth())).stdout.decode()
    assert listing.startswith("ref: refs/heads/main\tHEAD")

    file_url = git_server.file_url("group/sub/repo")
    assert file_url.startswith("file:///")
    local = clone(file_url, tmp_path / "f")
    assert (local / "a").read_text() == "gitlab\n"

    done = run_git(
        "clone", git_server.repo_url("no/such"), str(tmp_path / "x"), env=clean_env(**_auth()), check=False
    )
    assert done.returncode == 128 and "not found" in done.stderr.decode()


def _auth() -> dict[str, str]:
    return basic_auth_env("u", DEFAULT_TOKEN)


def test_anonymous_read_allows_clone_but_push_needs_a_token(git_server: GitServer, tmp_path: Path) -> None:
    git_server.anonymous_read = True
    url = git_server.create_repo("owner/public")
    env = clean_env()
    checkout = clone(url, tmp_path / "c", env=env)
    _commit(checkout, {"x": "1\n"}, env)
    rc, err = _push(checkout, env, "origin", "HEAD:refs/heads/b")
    assert rc == 128 and "terminal prompts disabled" in err
    # Credentials git sends up front (an extraHeader) are checked even where none are needed.
    with pytest.raises(AssertionError, match="terminal prompts disabled"):
        clone(url, tmp_path / "wrong", token="wrong-token")
    assert git_server.requests()[-1].status == 401


def test_bearer_tokens_only_when_enabled(git_server: GitServer, tmp_path: Path) -> None:
    url = git_server.create_repo("scm/PROJ/repo")
    bearer = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader"}
    bearer["GIT_CONFIG_VALUE_0"] = f"Authorization: Bearer {DEFAULT_TOKEN}"
    with pytest.raises(AssertionError, match="terminal prompts disabled"):
        clone(url, tmp_path / "off", env=clean_env(**bearer))
    git_server.accept_bearer = True
    clone(url, tmp_path / "on", env=clean_env(**bearer))
    last = git_server.requests()[-1]
    assert (last.auth_scheme, last.user, last.authorized) == ("bearer", None, True)


def test_reset_leaves_no_repos_log_or_credential_changes(git_server_session: GitServer) -> None:
    git_server_session.reset()
    git_server_session.create_repo("owner/repo")
    git_server_session.refuse(DEFAULT_TOKEN)
    git_server_session.anonymous_read = True
    git_server_session.accept_bearer = True
    run_git("ls-remote", git_server_session.repo_url("owner/repo"), check=False)
    assert git_server_session.log

    git_server_session.reset()
    assert list(git_server_session.root.iterdir()) == []
    assert git_server_session.log == []
    assert git_server_session.accepts("anyone", DEFAULT_TOKEN)
    assert not git_server_session.anonymous_read and not git_server_session.accept_bearer


def test_seeded_repos_are_byte_exact_and_reproducible(git_server: GitServer) -> None:
    a = git_server.create_repo("one/multi-cluster", FIXTURES / "multi-cluster")
    b = git_server.create_repo("two/multi-cluster", FIXTURES / "multi-cluster")
    assert a != b
    assert git_server.rev("one/multi-cluster", "main") == git_server.rev("two/multi-cluster", "main")
    for rel in git_server.files("one/multi-cluster"):
        assert git_server.read("one/multi-cluster", rel) == (FIXTURES / "multi-cluster" / rel).read_bytes(), (
            rel
        )
    tracked = set(git_server.files("one/multi-cluster"))
    on_disk = {
        p.relative_to(FIXTURES / "multi-cluster").as_posix() for p in (FIXTURES / "multi-cluster").rglob("*")
    }
    assert tracked == {p for p in on_disk if (FIXTURES / "multi-cluster" / p).is_file()}


def test_copy_fixture_gives_a_plain_tree_to_git_init(tmp_path: Path) -> None:
    dest = copy_fixture("hello-world", tmp_path / "repo")
    assert not (dest / ".git").exists()
    assert (dest / "application.yaml.tmpl").is_file()
    with pytest.raises(FileNotFoundError):
        copy_fixture("no-such-fixture", tmp_path / "x")


# -- the fixtures themselves ------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"\$\(\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\)|\$\(<\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*>\)"
)
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())


def reference_render(template: bytes, values: dict[str, str]) -> bytes:
    """The spec §3 substitution, nothing else; only to check the committed outputs are consistent."""

    def sub(match: re.Match[bytes]) -> bytes:
        key = (match.group(1) or match.group(2)).decode()
        return values[key].encode()

    return re.compile(_PLACEHOLDER.pattern.encode()).sub(sub, template)


def reference_output(template_rel: str, argv: list[str], values: dict[str, str], template: bytes) -> bytes:
    header = (
        "# Do NOT edit this file directly.\n"
        f"# File generated from {template_rel} by the update-gitops-repo tool "
        f"with arguments: {shlex.join(argv)}\n"
        "\n"
    )
    return header.encode() + reference_render(template, values)


def _runs() -> list[tuple[str, str, dict[str, object]]]:
    return [
        (name, template, run)
        for name, fixture in MANIFEST.items()
        for run in fixture["generated_by"]
        for template in run["templates"]
    ]


@pytest.mark.parametrize(("name", "template", "run"), _runs(), ids=lambda v: v if isinstance(v, str) else "")
def test_committed_output_is_what_the_recorded_run_generated(
    name: str, template: str, run: dict[str, object]
) -> None:
    root = FIXTURES / name
    [spec] = [t for t in MANIFEST[name]["templates"] if t["template"] == template]
    source = (root / template).read_bytes()
    keys = {(m.group(1) or m.group(2)).decode() for m in re.finditer(_PLACEHOLDER.pattern.encode(), source)}
    assert keys == set(spec["keys"])
    expected = reference_output(template, run["argv"], run["substitutions"], source)  # type: ignore[arg-type]
    assert (root / spec["output"]).read_bytes() == expected


def test_every_template_in_the_fixtures_is_listed_with_its_output() -> None:
    for name, fixture in MANIFEST.items():
        found = {p.relative_to(FIXTURES / name).as_posix() for p in (FIXTURES / name).rglob("*.tmpl")}
        assert found == {t["template"] for t in fixture["templates"]}, name
        assert found == {t for run in fixture["generated_by"] for t in run["templates"]}, name


def test_deliberate_quirks_are_present() -> None:
    mc = FIXTURES / "multi-cluster" / "production"
    crlf = (mc / "us-west-1" / "values.yaml.tmpl").read_bytes()
    assert crlf.count(b"\r\n") == crlf.count(b"\n") > 5
    assert not (mc / "us-west-2" / "deployment.yaml.tmpl").read_bytes().endswith(b"\n")
    assert not (mc / "us-west-2" / "deployment.yaml").read_bytes().endswith(b"\n")
    assert b"$(< .imageDigest >)" in (mc / "us-east-1" / "deployment.yaml.tmpl").read_bytes()
    # Non-templates that look like templates must stay as they are.
    assert b"$({ .imageDigest })" in (FIXTURES / "multi-cluster" / "base" / "deployment.yaml").read_bytes()
    helm = FIXTURES / "helm-chart"
    values = (helm / "values.yaml.tmpl").read_bytes()
    for needle in (b"$(POD_NAME)", b"${PORT:-8080}", b"{% for", b"{#", b"{{ .Release.Name }}", "ü".encode()):
        assert needle in values
    assert b'"true"   \n' in values  # trailing whitespace kept on purpose
    assert b"{{ .Values.image.repository }}" in (helm / "templates" / "deployment.yaml").read_bytes()
    assert b"{{- include" in (helm / "templates" / "configmap.yaml.tmpl").read_bytes()
