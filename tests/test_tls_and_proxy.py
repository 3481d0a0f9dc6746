"""Custom CA certificates and proxies reach both git and the API client (field note 5: one option, not two).

Against an HTTPS git server and an HTTPS fake GitHub whose certificates a throw-away CA signed
(tests/tls.py), the CLI runs as a pipeline runs it: without any CA it fails with one line naming the
fix; -ca-bundle, or any one of the usual variables alone, makes both the push and the pull request
work; a proxy from HTTPS_PROXY/https_proxy carries both (its log says so), NO_PROXY keeps both off it,
and a proxy password never shows. Then each of the four adapters, in-process: the resolved bundle wins
over REQUESTS_CA_BUNDLE, and its session still takes proxies from the environment.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from providers import bitbucket_cloud, bitbucket_server, github, gitlab
from providers.base import Adapter, ProviderConfig
from tests.conftest import Run, run_tool, snapshot
from tests.fakes.bitbucket_cloud import FakeBitbucketCloud
from tests.fakes.bitbucket_server import FakeBitbucketServer
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import MAINTAINER, FakeGitLab
from tests.gitserver import DEFAULT_TOKEN, GitServer, clean_env, clone, copy_fixture, make_home
from tests.tls import CertAuthority, ConnectProxy, TLSTerminator, make_ca
from updater import redact
from updater.credentials import CA_VARIABLES, find_ca_bundle
from updater.errors import ProviderError, UsageError
from updater.values import Credential, parse_origin

REV = "9c6ab68e75bec86422bb572ba904e5b853e32808"
ARGS = [
    f"-git-revision={REV}",
    "-substitute=imageName=registry.example.com/acme/app:1.2.3",
    "-scm-provider=github",
]
REPO = "acme/hello-world-gitops"
BRANCH = f"update-to-commit-{REV}"
PROXY_PASSWORD = "pr0xy-Pa55w0rd-7c1e"
# Everything that could make a run trust or proxy something this file did not ask for.
NETWORK_ENV = (
    *CA_VARIABLES,
    "NO_PROXY",
    "no_proxy",
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
)


@dataclass(frozen=True)
class PKI:
    ca: CertAuthority  # signed both servers' certificates
    other: CertAuthority  # signed nothing here: trusting only it must fail


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    root = tmp_path_factory.mktemp("pki")
    return PKI(make_ca(root / "ca", "Test Root CA"), make_ca(root / "other", "Unrelated CA"))


@pytest.fixture(scope="module")
def https_git_session(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with GitServer(tmp_path_factory.mktemp("https-git"), ssl_context=pki.ca.server_context()) as server:
        yield server


@pytest.fixture
def https_git(https_git_session: GitServer) -> GitServer:
    https_git_session.reset()
    return https_git_session


@dataclass
class Setup:
    git: GitServer
    api: FakeGitHub
    checkout: Path
    env: dict[str, str]  # no CA and no proxy variables at all
    home: Path

    def run(self, *extra: str, env: dict[str, str] | None = None) -> Run:
        return run_tool(
            [*ARGS, f"-api-endpoint={self.api.api_url}", *extra], self.checkout, {**self.env, **(env or {})}
        )

    def assert_pushed_and_opened(self, run: Run) -> None:
        assert run.returncode == 0, run.stderr
        [pull] = self.api.pulls(REPO)
        assert run.stdout == f"{self.api.web_url}/{REPO}/pull/{pull.number}\n"
        assert self.git.rev(REPO + ".git", BRANCH) is not None


@contextlib.contextmanager
def _setup(git: GitServer, pki: PKI, tmp_path: Path) -> Iterator[Setup]:
    url = git.create_repo(REPO + ".git", copy_fixture("hello-world", tmp_path / "seed"))
    # The checkout itself is made trusting the CA through git's own variable, which stays out of the runs.
    clone_env = {**clean_env(), "GIT_SSL_CAINFO": str(pki.ca.ca_pem)}
    checkout = clone(url, tmp_path / "checkout", token=DEFAULT_TOKEN, detached=True, env=clone_env)
    git.clear_log()
    env = {k: v for k, v in make_home(tmp_path).items() if k not in NETWORK_ENV}
    env["GITHUB_TOKEN"] = DEFAULT_TOKEN
    with FakeGitHub(ssl_context=pki.ca.server_context()) as api:
        api.add_token(DEFAULT_TOKEN)
        api.add_repo(REPO, git_dir=git.repo_dir(REPO + ".git"))
        yield Setup(git, api, checkout, env, Path(env["HOME"]))


@pytest.fixture
def tls(https_git: GitServer, pki: PKI, tmp_path: Path) -> Iterator[Setup]:
    """HTTPS git server and HTTPS fake GitHub, both signed by pki.ca."""
    with _setup(https_git, pki, tmp_path) as setup:
        yield setup


def _one_line(run: Run) -> str:
    assert len(run.error_lines) == 1, run.stderr
    assert "Traceback" not in run.stderr
    return run.error_lines[0]


# -- no CA: one line that names the fix --------------------------------------------------------------------


def test_without_a_ca_the_push_fails_with_one_line_naming_ca_bundle_and_ssl_cert_file(tls: Setup) -> None:
    run = tls.run()
    assert run.returncode == 1
    line = _one_line(run)
    assert "certificate" in line and "-ca-bundle=FILE.pem" in line and "SSL_CERT_FILE" in line, line
    assert tls.git.push_requests(REPO) == [] and tls.api.requests == []


def test_without_a_ca_the_api_fails_with_one_line_naming_ca_bundle_and_ssl_cert_file(
    git_server: GitServer, pki: PKI, tmp_path: Path
) -> None:
    # Plain-HTTP git, HTTPS API: the push lands, then the API's certificate is refused.
    with _setup(git_server, pki, tmp_path) as setup:
        run = setup.run()
    assert run.returncode == 1
    line = _one_line(run)
    assert "GitHub: TLS verification failed" in line, line
    assert "-ca-bundle=FILE.pem" in line and "SSL_CERT_FILE" in line, line
    assert git_server.rev(REPO + ".git", BRANCH) is not None and setup.api.requests == []


# -- one setting, both clients --------------------------------------------------------------------------------


def test_ca_bundle_reaches_git_and_the_api_through_the_environment_only(tls: Setup, pki: PKI) -> None:
    gitconfig = (tls.home / ".gitconfig").read_text()
    run = tls.run(f"-ca-bundle={pki.ca.ca_pem}", "-verbose")
    tls.assert_pushed_and_opened(run)
    # git got it as GIT_CONFIG_* / GIT_SSL_CAINFO: nothing on its command lines, nothing written to config.
    git_lines = [ln for ln in run.stderr.splitlines() if ln.startswith("git ") and " -c " in ln]
    assert git_lines == [] and "sslcainfo" not in run.stderr.lower()
    assert str(pki.ca.ca_pem) not in (tls.checkout / ".git" / "config").read_text()
    assert (tls.home / ".gitconfig").read_text() == gitconfig


def test_ca_bundle_wins_over_every_variable_for_both_clients(tls: Setup, pki: PKI) -> None:
    # Each client's own variable names the wrong CA: git would read GIT_SSL_CAINFO over any config, and
    # requests would put REQUESTS_CA_BUNDLE over a session's bundle, unless the flag reaches both.
    wrong = str(pki.other.ca_pem)
    env = {
        "GIT_SSL_CAINFO": wrong,
        "REQUESTS_CA_BUNDLE": wrong,
        "CURL_CA_BUNDLE": wrong,
        "SSL_CERT_FILE": wrong,
    }
    tls.assert_pushed_and_opened(tls.run(f"-ca-bundle={pki.ca.ca_pem}", env=env))


@pytest.mark.parametrize(
    "variable", ["SSL_CERT_FILE", "GIT_SSL_CAINFO", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"]
)
def test_the_first_ca_variable_set_reaches_both_clients_whatever_later_ones_say(
    tls: Setup, pki: PKI, variable: str
) -> None:
    # git built on GnuTLS reads none of these but GIT_SSL_CAINFO, requests none but the two *_CA_BUNDLE;
    # the later ones name the wrong CA and would each win in their own client if left alone. (The image
    # sets REQUESTS_CA_BUNDLE to the system store: a user's SSL_CERT_FILE must still win, for both.)
    later = CA_VARIABLES[CA_VARIABLES.index(variable) + 1 : CA_VARIABLES.index("SSL_CERT_DIR")]
    env = {variable: str(pki.ca.ca_pem), **dict.fromkeys(later, str(pki.other.ca_pem))}
    tls.assert_pushed_and_opened(tls.run(env=env))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl rehash for a CA directory")
def test_ssl_cert_dir_alone_reaches_both_clients(tls: Setup, pki: PKI, tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(pki.ca.ca_pem, certs / "test-root.pem")
    subprocess.run(["openssl", "rehash", str(certs)], check=True, capture_output=True)
    tls.assert_pushed_and_opened(tls.run(env={"SSL_CERT_DIR": str(certs)}))


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("missing", "-ca-bundle {path}: cannot read it (No such file or directory)"),
        ("not-pem", "-ca-bundle {path} holds no PEM certificate"),
        ("env-missing", "SSL_CERT_FILE={path}: cannot read it (No such file or directory); fix or unset"),
    ],
)
def test_an_unusable_ca_bundle_is_a_usage_error_before_anything_is_written(
    tls: Setup, tmp_path: Path, how: str, expected: str
) -> None:
    path = tmp_path / "absent.pem"
    if how == "not-pem":
        path = tmp_path / "ca.der"
        path.write_bytes(b"\x30\x82\x01\x0a not a PEM file")
    before = snapshot(tls.checkout)
    run = tls.run(env={"SSL_CERT_FILE": str(path)}) if how == "env-missing" else tls.run(f"-ca-bundle={path}")
    assert run.returncode == 2
    assert expected.format(path=path) in _one_line(run)
    assert snapshot(tls.checkout) == before
    assert tls.git.requests() == [] and tls.api.requests == []


# -- proxies ---------------------------------------------------------------------------------------------


def test_https_proxy_carries_both_git_and_the_api(tls: Setup, pki: PKI) -> None:
    with ConnectProxy() as proxy:
        run = tls.run(f"-ca-bundle={pki.ca.ca_pem}", env={"HTTPS_PROXY": proxy.url()})
    tls.assert_pushed_and_opened(run)
    assert proxy.targets == {f"127.0.0.1:{tls.git.port}", f"127.0.0.1:{tls.api.port}"}
    assert any(t.client.startswith("git/") for t in proxy.tunnels)  # git's own CONNECTs, not only the API's


def test_proxy_password_is_used_by_both_and_never_shown(tls: Setup, pki: PKI) -> None:
    with ConnectProxy(credentials=("proxy-bot", PROXY_PASSWORD)) as proxy:
        env = {"https_proxy": proxy.url("proxy-bot", PROXY_PASSWORD), "SSL_CERT_FILE": str(pki.ca.ca_pem)}
        run = tls.run("-verbose", env=env)
    tls.assert_pushed_and_opened(run)
    assert proxy.targets == {f"127.0.0.1:{tls.git.port}", f"127.0.0.1:{tls.api.port}"}
    assert {t.user for t in proxy.tunnels} == {"proxy-bot"}
    assert "git and the API client use the proxy settings https_proxy=http://***@127.0.0.1" in run.stderr
    assert PROXY_PASSWORD not in run.stdout + run.stderr


def test_a_refused_proxy_password_fails_in_one_line_without_showing_it(tls: Setup, pki: PKI) -> None:
    with ConnectProxy(credentials=("proxy-bot", "the-right-one")) as proxy:
        env = {"HTTPS_PROXY": proxy.url("proxy-bot", PROXY_PASSWORD), "SSL_CERT_FILE": str(pki.ca.ca_pem)}
        run = tls.run("-verbose", env=env)
    assert run.returncode == 1
    assert "407" in _one_line(run)
    assert proxy.refused > 0 and proxy.tunnels == []
    assert PROXY_PASSWORD not in run.stdout + run.stderr


def test_no_proxy_keeps_both_clients_off_the_proxy(tls: Setup, pki: PKI) -> None:
    with ConnectProxy() as proxy:
        env = {
            "HTTPS_PROXY": proxy.url(),
            "NO_PROXY": "example.com,127.0.0.1",
            "SSL_CERT_FILE": str(pki.ca.ca_pem),
        }
        run = tls.run(env=env)
    tls.assert_pushed_and_opened(run)
    assert proxy.tunnels == [] and proxy.refused == 0


# -- the rule itself, in-process ---------------------------------------------------------------------------


def test_the_first_ca_source_wins_in_the_documented_order(
    pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert find_ca_bundle(None) is None
    files = {}
    for name in CA_VARIABLES:
        path = tmp_path / name.lower()
        if name.endswith(("_DIR", "_CAPATH")):
            path.mkdir()
        else:
            path.write_bytes(pki.ca.ca_pem.read_bytes())
        files[name] = str(path)
    # Set them all, then take them away from the front: each time the next one in the order wins.
    for name in CA_VARIABLES:
        monkeypatch.setenv(name, files[name])
    flag = find_ca_bundle(str(pki.other.ca_pem))
    assert flag is not None and (flag.source, flag.path) == ("-ca-bundle", str(pki.other.ca_pem))
    for name in CA_VARIABLES:
        found = find_ca_bundle(None)
        assert found is not None and (found.source, found.path) == (name, files[name])
        assert found.is_dir == name.endswith(("_DIR", "_CAPATH"))
        monkeypatch.delenv(name)
    assert find_ca_bundle(None) is None


def test_a_relative_ca_bundle_is_made_absolute_for_git(pki: PKI, monkeypatch: pytest.MonkeyPatch) -> None:
    # git runs at the top of the checkout, not where the tool was started.
    monkeypatch.chdir(pki.ca.ca_pem.parent)
    found = find_ca_bundle("ca.pem")
    assert found is not None and found.path == str(pki.ca.ca_pem)
    assert found.git_config() == {"http.sslCAInfo": str(pki.ca.ca_pem)}
    assert found.git_env() == {"GIT_SSL_CAINFO": str(pki.ca.ca_pem)}
    with pytest.raises(UsageError):
        find_ca_bundle("missing.pem")


# -- each adapter: the resolved bundle beats REQUESTS_CA_BUNDLE, proxies come from the environment -------------


@dataclass
class Api:
    name: str
    connect: Callable[[ProviderConfig], Adapter]
    config: dict[str, Any]  # origin, credential, api_endpoint (https, through a terminator or TLS itself)
    port: int  # where the proxy should tunnel to


def _github(pki: PKI) -> Iterator[Api]:
    with FakeGitHub(ssl_context=pki.ca.server_context()) as fake:
        fake.add_token("ghp_tls_token_1234567890")
        fake.add_repo("acme/gitops", default_branch="main")
        credential = Credential("ghp_tls_token_1234567890", None, "token", "GITHUB_TOKEN")
        origin = parse_origin("https://ghe.example.com/acme/gitops.git")
        yield Api(
            "GitHub",
            github.connect,
            {"origin": origin, "credential": credential, "api_endpoint": fake.api_url},
            fake.port,
        )


def _gitlab(pki: PKI) -> Iterator[Api]:
    with FakeGitLab() as fake:
        assert isinstance(fake, FakeGitLab)
        fake.add_token("glpat-tls-token-1234567890", "ci-bot")
        fake.add_repo("group/gitops", default_branch="main", members={"ci-bot": MAINTAINER})
        with TLSTerminator(pki.ca, _port(fake.api_url)) as tls:
            credential = Credential("glpat-tls-token-1234567890", None, "token", "GITLAB_TOKEN")
            origin = parse_origin("https://gitlab.example.com/group/gitops.git")
            yield Api(
                "GitLab",
                gitlab.connect,
                {"origin": origin, "credential": credential, "api_endpoint": tls.https(fake.api_url)},
                tls.port,
            )


def _bitbucket_server(pki: PKI) -> Iterator[Api]:
    with FakeBitbucketServer(context="/bitbucket") as fake:
        assert isinstance(fake, FakeBitbucketServer)
        fake.add_user("ci-bot")
        fake.add_token("BBDC-tls-token-1234567890", "ci-bot")
        fake.add_repo("PROJ", "gitops", permissions={"ci-bot": "REPO_WRITE"})
        with TLSTerminator(pki.ca, _port(fake.api_url)) as tls:
            credential = Credential("BBDC-tls-token-1234567890", None, "token", "BITBUCKET_SERVER_TOKEN")
            origin = parse_origin(tls.https(fake.base_url) + "/scm/PROJ/gitops.git")
            yield Api(
                "Bitbucket Server",
                bitbucket_server.connect,
                {"origin": origin, "credential": credential},
                tls.port,
            )


def _bitbucket_cloud(pki: PKI) -> Iterator[Api]:
    with FakeBitbucketCloud() as fake:
        fake.add_api_token("ci-bot@example.com", "ATATT-tls-1234567890", username="ci-bot")
        fake.add_repo("team", "gitops", mainbranch="main")
        with TLSTerminator(pki.ca, _port(fake.api_url)) as tls:
            credential = Credential(
                "ATATT-tls-1234567890", "ci-bot", "api-token", "BITBUCKET_API_TOKEN", "ci-bot@example.com"
            )
            origin = parse_origin("https://ci-bot@bitbucket.org/team/gitops.git")
            yield Api(
                "Bitbucket Cloud",
                bitbucket_cloud.connect,
                {"origin": origin, "credential": credential, "api_endpoint": tls.https(fake.api_url)},
                tls.port,
            )


def _port(url: str) -> int:
    port = urllib.parse.urlsplit(url).port
    assert port is not None, url
    return port


@pytest.fixture(
    scope="module",
    params=[_github, _gitlab, _bitbucket_server, _bitbucket_cloud],
    ids=lambda f: f.__name__[1:],
)
def api(request: pytest.FixtureRequest, pki: PKI) -> Iterator[Api]:
    """One fake per provider for the module (stopping the Bitbucket Cloud one takes half a second)."""
    yield from request.param(pki)
    redact.forget_all()


@pytest.fixture(autouse=True)
def _no_network_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process clients must not pick up the CA or proxy settings of the shell that runs the tests.
    for name in NETWORK_ENV:
        monkeypatch.delenv(name, raising=False)


def _config(api: Api, ca_bundle: str | None) -> ProviderConfig:
    return ProviderConfig(**api.config, ca_bundle=ca_bundle, deadline=1.0, timeout=5.0, warn=lambda _m: None)


def test_each_adapter_trusts_the_resolved_bundle_over_requests_ca_bundle_and_uses_the_proxy(
    api: Api, pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.other.ca_pem))  # what requests would pick by itself
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        assert api.connect(_config(api, str(pki.ca.ca_pem))).default_branch() == "main"
    # The session kept trust_env: the proxy came from the environment.
    assert proxy.targets == {f"127.0.0.1:{api.port}"}


def test_each_adapter_explains_an_untrusted_certificate_in_one_line(api: Api, pki: PKI) -> None:
    for ca_bundle, hint in [
        (None, "pass the server's CA certificates with -ca-bundle=FILE.pem or set SSL_CERT_FILE"),
        (
            str(pki.other.ca_pem),
            f"the CA certificates in {pki.other.ca_pem} do not include the one that signed",
        ),
    ]:
        with pytest.raises(ProviderError) as caught:
            api.connect(_config(api, ca_bundle)).default_branch()
        message = str(caught.value)
        assert "\n" not in message and "TLS verification failed" in message and hint in message, message
