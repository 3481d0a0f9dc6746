"""A real git remote for tests: `git http-backend` behind a token-checking HTTP server on 127.0.0.1.

See /work/shared/docs/testing-recipes.md §1. Everything git does here is real: smart HTTP (protocol v2),
401 challenges, chunked pushes, server-side hooks, non-fast-forward refusals. The same bare repositories
are reachable as `file://` remotes (`GitServer.file_url`).

Also here: `clone` (a checkout made the way Tekton's git resource makes it: detached HEAD, shallow) and
`make_home` (a HOME with `~/.git-credentials` + `credential.helper = store`, as Tekton writes them).

Fixtures for conftest.py: `git_server_session` (one server per session / xdist worker) and `git_server`
(the same server, wiped clean before each test: no repos, empty log, default credentials).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

DEFAULT_USER = "x-access-token"
# Accepted with any username unless a test configures otherwise (GitHub and GitLab accept PATs that way).
DEFAULT_TOKEN = "test-token-8d3f0c2a9b71"

# Commits the server makes itself get a fixed identity and clock, so their SHAs are the same on every run.
SEED_AUTHOR = ("Fixture Seeder", "seeder@example.com")
SEED_EPOCH = 1704164645  # 2024-01-02T03:04:05Z

# Environment that must not leak from the developer's shell or CI into git runs in tests: git's own
# variables (GIT_DIR when pytest runs from a hook, GIT_CONFIG_*), credentials the tool would pick up,
# proxies that would swallow 127.0.0.1, and locale (tests match git's English messages).
_DROP_ENV_PREFIXES = ("GIT_", "BITBUCKET_", "UPDATE_GITOPS_REPO_")
_DROP_ENV = frozenset(
    {
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "GH_ENTERPRISE_TOKEN",
        "GITLAB_TOKEN",
        "GL_TOKEN",
        "CI_JOB_TOKEN",
        "SSH_ASKPASS",
        "HOME",
        "XDG_CONFIG_HOME",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "LANGUAGE",
        "LC_ALL",
        "LANG",
    }
)

_SERVICES = ("git-upload-pack", "git-receive-pack")
# What follows the repository in a smart/dumb HTTP path; used to map ".git"-less URLs onto the bare repo.
_SUFFIXES = ("/info/refs", "/git-upload-pack", "/git-receive-pack", "/HEAD", "/objects/")

PRE_RECEIVE_HOOK = """\
#!/bin/sh
# Installed by tests/gitserver.py (GitServer.protect_branch): refuse any update of a protected branch,
# worded like GitHub's protected-branch refusal.
dir=$(dirname "$0")/..
status=0
while read -r old new ref; do
    if grep -Fxq -- "$ref" "$dir/protected-refs" 2>/dev/null; then
        echo "error: GH006: Protected branch update failed for $ref." >&2
        cat "$dir/protected-message" >&2
        echo "error: protected branch hook declined" >&2
        status=1
    fi
done
exit $status
"""


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without git, credential, proxy and locale variables, plus `extra`.

    HOME is dropped too (git then reads no global config); make_home() gives a HOME to use instead.
    """
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV and not k.startswith(_DROP_ENV_PREFIXES)}
    env.update({"LC_ALL": "C", "LANG": "C", "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"})
    env.update(extra)
    return env


def run_git(
    *args: str,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run git; on failure raise AssertionError with its stderr (tests want to see why)."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=dict(env) if env is not None else clean_env(),
        input=input,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"git {' '.join(args)} failed (rc {done.returncode}): {done.stderr.decode(errors='replace')}"
        )
    return done


def token_fingerprint(token: str) -> str:
    """What the request log stores instead of a token: enough to tell tokens apart, useless to replay."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def basic_auth_env(user: str, token: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """GIT_CONFIG_COUNT/KEY/VALUE entries for `http.extraHeader: Authorization: Basic …` (git >= 2.31).

    Appends to GIT_CONFIG_* already in `base`; returns only the new/changed variables.
    """
    base = base if base is not None else {}
    start = int(base.get("GIT_CONFIG_COUNT", "0") or 0)
    basic = base64.b64encode(f"{user}:{token}".encode()).decode()
    return {
        f"GIT_CONFIG_KEY_{start}": "http.extraHeader",
        f"GIT_CONFIG_VALUE_{start}": f"Authorization: Basic {basic}",
        "GIT_CONFIG_COUNT": str(start + 1),
    }


@dataclass(frozen=True)
class RefUpdate:
    old: str
    new: str
    ref: str

    @property
    def is_delete(self) -> bool:
        return set(self.new) == {"0"}


@dataclass(frozen=True)
class LogEntry:
    """One HTTP request the server answered. Never holds a token, only its fingerprint."""

    method: str
    path: str  # the URL path as requested, e.g. /owner/repo.git/info/refs
    query: str
    repo: str | None  # bare repo relative to the root, e.g. "owner/repo.git"
    service: str | None  # git-upload-pack (clone/fetch), git-receive-pack (push)
    user: str | None  # username presented, if any
    auth_scheme: str  # "none", "basic", "bearer", …
    authorized: bool  # the credentials presented were accepted
    token_fingerprint: str | None
    status: int
    ref_updates: tuple[RefUpdate, ...] = ()  # what a push asked to update (receive-pack POST)
    git_protocol: str | None = None  # the Git-Protocol header ("version=2")
    chunked: bool = False  # the body came with Transfer-Encoding: chunked (git does that above 1 MiB)
    body_size: int = 0  # decoded request body, bytes

    @property
    def is_push(self) -> bool:
        return self.method == "POST" and self.service == "git-receive-pack"


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    git: GitServer


class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.1 so curl's keep-alive and `Expect: 100-continue` work without its 1 s fallback wait.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle + delayed ACK add ~40 ms each.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is GitServer.log

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # git sends pushes larger than http.postBuffer (1 MiB) chunked.
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _credentials(self) -> tuple[str | None, str, str | None]:
        """(user, scheme, token) from the Authorization header."""
        header = self.headers.get("Authorization")
        if not header:
            return None, "none", None
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                user, sep, token = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None, scheme, None
            return user, scheme, token if sep else None
        if scheme == "bearer":
            return None, scheme, value.strip()
        return None, scheme, None

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, close: bool = False) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _serve(self) -> None:
        git = self.server.git
        # Read the whole body first: answering 401 before it is consumed makes curl see a reset, not a 401.
        body = self._read_body()
        split = urllib.parse.urlsplit(self.path)
        path_info = urllib.parse.unquote(split.path)
        repo, path_info = git._resolve(path_info)
        service = _service(path_info, split.query)
        user, scheme, token = self._credentials()
        authorized = token is not None and git.accepts(user, token, scheme)
        updates: tuple[RefUpdate, ...] = ()
        if self.command == "POST" and service == "git-receive-pack":
            encoding = self.headers.get("Content-Encoding", "")
            updates = _ref_updates(gzip.decompress(body) if encoding == "gzip" else body)

        # Like GitHub on a public repo: no credentials may read; wrong credentials are still refused.
        anonymous_ok = git.anonymous_read and scheme == "none" and service != "git-receive-pack"
        close = False
        if not authorized and not anonymous_ok:
            status, close = 401, True
            headers = [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Type", "text/plain")]
            payload = b"Authentication required\n"
        elif repo is None:
            status, headers, payload = 404, [("Content-Type", "text/plain")], b"Repository not found\n"
        else:
            status, headers, payload = self._run_backend(
                path_info, split.query, body, user if authorized else None
            )
        # Logged before the answer goes out: once git has its response, the log already shows it.
        git._record(
            LogEntry(
                method=self.command,
                path=split.path,
                query=split.query,
                repo=repo,
                service=service,
                user=user,
                auth_scheme=scheme,
                authorized=authorized,
                token_fingerprint=token_fingerprint(token) if token is not None else None,
                status=status,
                ref_updates=updates,
                git_protocol=self.headers.get("Git-Protocol"),
                chunked="chunked" in self.headers.get("Transfer-Encoding", "").lower(),
                body_size=len(body),
            )
        )
        if close:
            self._send(status, headers, payload, close=True)
        else:
            self._send(status, headers, payload)

    def _run_backend(
        self, path_info: str, query: str, body: bytes, remote_user: str | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        git = self.server.git
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(git.home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": str(git.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
        }
        for name, value in self.headers.items():
            if name.lower() not in ("authorization", "content-type", "content-length", "transfer-encoding"):
                env["HTTP_" + name.upper().replace("-", "_")] = value  # incl. HTTP_CONTENT_ENCODING (gzip)
        if protocol := self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = protocol
        if remote_user is not None:
            # http-backend refuses receive-pack for unauthenticated requests (no REMOTE_USER).
            env["REMOTE_USER"] = remote_user
            env["AUTH_TYPE"] = "Basic"
        done = subprocess.run(
            [str(_http_backend())], input=body, env=env, capture_output=True, timeout=120, check=False
        )
        out = done.stdout
        ends = [(i, n) for i, n in ((out.find(b"\r\n\r\n"), 4), (out.find(b"\n\n"), 2)) if i >= 0]
        if not ends:
            return 500, [("Content-Type", "text/plain")], b"http-backend failed\n" + done.stderr
        end, sep = min(ends)
        status = 200
        headers: list[tuple[str, str]] = []
        for line in out[:end].decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            value = value.strip()
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name.lower() not in ("content-length", "transfer-encoding", "connection"):
                headers.append((name, value))
        return status, headers, out[end + sep :]


def _service(path_info: str, query: str) -> str | None:
    for name in _SERVICES:
        if path_info.endswith("/" + name):
            return name
    for value in urllib.parse.parse_qs(query).get("service", []):
        if value in _SERVICES:
            return value
    return None


def _ref_updates(body: bytes) -> tuple[RefUpdate, ...]:
    """The commands at the start of a receive-pack request: pkt-lines "old new ref[\\0caps]" up to a flush."""
    updates: list[RefUpdate] = []
    pos = 0
    while pos + 4 <= len(body):
        try:
            size = int(body[pos : pos + 4], 16)
        except ValueError:
            break
        if size == 0:
            break
        line = body[pos + 4 : pos + size].split(b"\0", 1)[0].decode(errors="replace").strip()
        pos += size
        parts = line.split(" ")
        if len(parts) == 3 and not line.startswith("push-cert"):
            updates.append(RefUpdate(*parts))
    return tuple(updates)


_backend_path: Path | None = None


def _http_backend() -> Path:
    global _backend_path
    if _backend_path is None:
        exec_path = run_git("--exec-path").stdout.decode().strip()
        _backend_path = Path(exec_path) / "git-http-backend"
    return _backend_path


def _normalize(path: str) -> str:
    """'owner/repo' or '/owner/repo.git' → 'owner/repo.git'; refuses anything that could escape the root."""
    parts = PurePosixPath(path.strip("/")).parts
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"bad repository path: {path!r}")
    name = "/".join(parts)
    return name if name.endswith(".git") else name + ".git"


class GitServer:
    """Bare repositories under `root`, served over smart HTTP at `url` with Basic-auth token checks.

    Credentials: exact (user, token) pairs (`allow`), tokens accepted with any username (`allow_token`),
    and refused tokens (`refuse`: 401 whatever else says, e.g. revoked or expired). By default any
    username with DEFAULT_TOKEN is accepted. `anonymous_read=True` lets clones/fetches through without
    credentials (a public repo); pushes always need them. `accept_bearer=True` also takes
    `Authorization: Bearer <token>` for any accepted token (Bitbucket Server/DC HTTP access tokens).
    """

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        credentials: Iterable[tuple[str, str]] = (),
        any_user_tokens: Iterable[str] = (DEFAULT_TOKEN,),
        anonymous_read: bool = False,
        accept_bearer: bool = False,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="gitserver-")
            base = Path(self._tmp.name)
        else:
            base = Path(root)
        self.root = base / "repos"
        self.home = base / "home"  # HOME for the backend and for the server's own git commands
        self.root.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._initial = (frozenset(credentials), frozenset(any_user_tokens), anonymous_read, accept_bearer)
        self._pairs: set[tuple[str, str]] = set()
        self._any_user: set[str] = set()
        self._refused: set[str] = set()
        self.anonymous_read = anonymous_read
        self.accept_bearer = accept_bearer
        self.log: list[LogEntry] = []
        self._restore_credentials()
        self._port = port  # 0: any free port
        self._ssl_context = ssl_context  # serve https:// with this context (tests/tls.py makes one)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> GitServer:
        httpd = _HTTPServer(("127.0.0.1", self._port), _Handler)
        httpd.git = self
        if self._ssl_context is not None:
            httpd.socket = self._ssl_context.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="gitserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Back to a fresh server at the same URL: no repos, empty log, the constructor's credentials."""
        with self._lock:
            self.log.clear()
        self._restore_credentials()
        self.anonymous_read, self.accept_bearer = self._initial[2], self._initial[3]
        for child in self.root.iterdir():
            shutil.rmtree(child)

    @property
    def port(self) -> int:
        assert self._httpd is not None, "GitServer not started"
        return int(self._httpd.server_address[1])

    @property
    def scheme(self) -> str:
        return "https" if self._ssl_context is not None else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    # -- credentials -----------------------------------------------------------------------------------

    def _restore_credentials(self) -> None:
        with self._lock:
            self._pairs = set(self._initial[0])
            self._any_user = set(self._initial[1])
            self._refused = set()

    def allow(self, user: str, token: str) -> None:
        """Accept this token with exactly this username (Bitbucket-style)."""
        with self._lock:
            self._pairs.add((user, token))
            self._refused.discard(token)

    def allow_token(self, token: str) -> None:
        """Accept this token with any username (GitHub/GitLab PAT-style)."""
        with self._lock:
            self._any_user.add(token)
            self._refused.discard(token)

    def refuse(self, token: str) -> None:
        """Answer 401 to this token from now on, whatever else accepts it (revoked, expired)."""
        with self._lock:
            self._refused.add(token)

    def set_credentials(
        self, credentials: Iterable[tuple[str, str]] = (), any_user_tokens: Iterable[str] = ()
    ) -> None:
        """Replace every accepted credential (refused tokens are forgotten too)."""
        with self._lock:
            self._pairs = set(credentials)
            self._any_user = set(any_user_tokens)
            self._refused = set()

    def accepts(self, user: str | None, token: str, scheme: str = "basic") -> bool:
        with self._lock:
            if token in self._refused:
                return False
            if scheme == "bearer":
                return self.accept_bearer and (
                    token in self._any_user or any(t == token for _, t in self._pairs)
                )
            return token in self._any_user or (user or "", token) in self._pairs

    # -- request log -----------------------------------------------------------------------------------

    def _record(self, entry: LogEntry) -> None:
        with self._lock:
            self.log.append(entry)

    def requests(self, repo: str | None = None) -> list[LogEntry]:
        """A snapshot of the log, optionally for one repo ('owner/repo' or 'owner/repo.git')."""
        with self._lock:
            entries = list(self.log)
        return [e for e in entries if repo is None or e.repo == _normalize(repo)]

    def push_requests(self, repo: str | None = None) -> list[LogEntry]:
        """receive-pack POSTs that reached the backend (authorized). A hook refusal is still HTTP 200."""
        return [e for e in self.requests(repo) if e.is_push and e.authorized and e.status == 200]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    # -- repositories ----------------------------------------------------------------------------------

    def _resolve(self, path_info: str) -> tuple[str | None, str]:
        """(repo relative to root, PATH_INFO for the backend); maps '/owner/repo/…' onto owner/repo.git
        the way GitHub and GitLab accept clone URLs without '.git'."""
        for suffix in _SUFFIXES:
            at = path_info.find(suffix)
            if at <= 0:
                continue
            head, rest = path_info[:at], path_info[at:]
            try:
                name = _normalize(head)
            except ValueError:
                return None, path_info
            if not (self.root / name).is_dir():
                return None, path_info
            return name, "/" + name + rest
        return None, path_info

    def repo_dir(self, path: str) -> Path:
        return self.root / _normalize(path)

    def repo_url(self, path: str) -> str:
        """Clone URL without credentials, e.g. http://127.0.0.1:PORT/owner/repo.git."""
        return f"{self.url}/{_normalize(path)}"

    def repo_url_with_token(self, path: str, user: str, token: str) -> str:
        quote = urllib.parse.quote
        userinfo = f"{quote(user, safe='')}:{quote(token, safe='')}"
        return f"{self.scheme}://{userinfo}@127.0.0.1:{self.port}/{_normalize(path)}"

    def file_url(self, path: str) -> str:
        """The same bare repo as a file:// remote (no server, no auth, same hooks)."""
        return self.repo_dir(path).as_uri()

    def _env(self, **extra: str) -> dict[str, str]:
        name, email = SEED_AUTHOR
        return clean_env(
            HOME=str(self.home),
            GIT_AUTHOR_NAME=name,
            GIT_AUTHOR_EMAIL=email,
            GIT_COMMITTER_NAME=name,
            GIT_COMMITTER_EMAIL=email,
            **extra,
        )

    def git(self, path: str, *args: str, check: bool = True) -> str:
        """Run git inside a bare repo and return stdout (stripped)."""
        done = run_git(*args, env=self._env(GIT_DIR=str(self.repo_dir(path))), check=check)
        return done.stdout.decode().strip()

    def create_repo(
        self,
        path: str,
        from_dir: Path | str | Mapping[str, str | bytes] | None = None,
        default_branch: str = "main",
        *,
        message: str = "Initial commit",
        empty: bool = False,
    ) -> str:
        """A bare repo at `path` ('owner/repo.git', 'scm/PROJ/repo.git', 'group/sub/repo.git'), seeded with
        one commit on `default_branch` from a directory tree or a {relative path: content} dict (a README
        when neither; nothing when `empty`). HEAD points at `default_branch`. Returns the clone URL.
        """
        bare = self.repo_dir(path)
        if bare.exists():
            raise FileExistsError(f"repository exists: {path}")
        run_git("init", "--bare", "--quiet", str(bare), env=self._env())
        run_git("symbolic-ref", "HEAD", f"refs/heads/{default_branch}", env=self._env(GIT_DIR=str(bare)))
        if not empty:
            seed = (
                {"README.md": f"# {PurePosixPath(_normalize(path)).stem}\n"} if from_dir is None else from_dir
            )
            self.commit_directly(path, seed, branch=default_branch, message=message, replace_tree=True)
        return self.repo_url(path) if self._httpd is not None else self.file_url(path)

    def commit_directly(
        self,
        path: str,
        files: Path | str | Mapping[str, str | bytes | None],
        *,
        branch: str | None = None,
        message: str = "Concurrent update",
        start_point: str | None = None,
        replace_tree: bool = False,
    ) -> str:
        """Write a commit straight into the bare repo, as another writer whose push already landed would.

        Bypasses hooks and auth. `files` maps paths to new content (None deletes), or is a directory
        whose tree is added. The parent is the branch tip (or `start_point` for a new branch); with
        `replace_tree` the commit holds only `files`. Dated one minute after its parent, so SHAs are
        reproducible. Returns the new commit's SHA.
        """
        branch = branch or self.default_branch(path)
        parent = self.rev(path, f"refs/heads/{branch}") or (
            self.rev(path, start_point) if start_point else None
        )
        with tempfile.TemporaryDirectory(prefix="gitserver-commit-") as tmp:
            work = Path(tmp) / "tree"
            work.mkdir()
            env = self._env(GIT_DIR=str(self.repo_dir(path)), GIT_INDEX_FILE=str(Path(tmp) / "index"))
            env["GIT_WORK_TREE"] = str(work)
            if parent and not replace_tree:
                run_git("read-tree", parent, env=env)
            if isinstance(files, (str, Path)):
                source = Path(files)
                if not source.is_dir():
                    raise FileNotFoundError(f"not a directory: {source}")
                shutil.copytree(source, work, dirs_exist_ok=True, symlinks=True)
                # Honours the tree's .gitignore; keeps files that are only in the parent.
                run_git("add", "--ignore-removal", ".", cwd=work, env=env)
            else:
                for rel, content in files.items():
                    target = work / rel
                    if content is None:
                        run_git("rm", "--cached", "--quiet", "--ignore-unmatch", "--", rel, cwd=work, env=env)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(content.encode() if isinstance(content, str) else content)
                    run_git("add", "--force", "--", rel, cwd=work, env=env)
            tree = run_git("write-tree", env=env).stdout.decode().strip()
            when = SEED_EPOCH
            if parent:
                when = int(run_git("show", "-s", "--format=%ct", parent, env=env).stdout.decode()) + 60
            date = f"{when} +0000"
            env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
            args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
            sha = run_git(*args, env=env).stdout.decode().strip()
            run_git("update-ref", f"refs/heads/{branch}", sha, env=env)
        return sha

    def default_branch(self, path: str) -> str:
        return self.git(path, "symbolic-ref", "--short", "HEAD")

    def rev(self, path: str, ref: str) -> str | None:
        """The commit SHA `ref` names in the bare repo, or None."""
        out = self.git(path, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return out or None

    def branches(self, path: str) -> dict[str, str]:
        """{branch name: SHA} of the bare repo."""
        out = self.git(path, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/")
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def read(self, path: str, file: str, ref: str = "HEAD") -> bytes:
        """A file's bytes at `ref` in the bare repo."""
        done = run_git("cat-file", "blob", f"{ref}:{file}", env=self._env(GIT_DIR=str(self.repo_dir(path))))
        return done.stdout

    def files(self, path: str, ref: str = "HEAD") -> list[str]:
        """Paths of all files at `ref`."""
        return self.git(path, "ls-tree", "-r", "--name-only", ref).splitlines()

    def protect_branch(
        self, path: str, branch: str, message: str = "error: Changes must be made through a pull request."
    ) -> None:
        """Install a pre-receive hook that refuses every update of `branch` (like GitHub's branch
        protection). The client sees `remote: error: GH006: Protected branch update failed for
        refs/heads/<branch>.` and ` ! [remote rejected] <branch> -> <branch> (pre-receive hook declined)`."""
        bare = self.repo_dir(path)
        refs = bare / "protected-refs"
        existing = refs.read_text().splitlines() if refs.exists() else []
        refs.write_text("\n".join(dict.fromkeys([*existing, f"refs/heads/{branch}"])) + "\n")
        (bare / "protected-message").write_text(message.rstrip("\n") + "\n")
        hook = bare / "hooks" / "pre-receive"
        hook.write_text(PRE_RECEIVE_HOOK)
        hook.chmod(0o755)

    def unprotect_branch(self, path: str, branch: str) -> None:
        refs = self.repo_dir(path) / "protected-refs"
        if refs.exists():
            kept = [r for r in refs.read_text().splitlines() if r != f"refs/heads/{branch}"]
            refs.write_text("".join(r + "\n" for r in kept))


# -- checkouts and homes --------------------------------------------------------------------------------


def make_home(
    tmp_path: Path,
    url: str | None = None,
    user: str | None = None,
    token: str | None = None,
    *,
    style: Literal["git", "tekton"] = "git",
) -> dict[str, str]:
    """A HOME like the one Tekton prepares, and an environment for running git or the tool in it.

    `.gitconfig` has `credential.helper = store`. With url/user/token, `.git-credentials` gets the entry:
    style "git" stores it exactly as `git credential approve` does (a port is encoded: host%3aPORT);
    style "tekton" writes `scheme://user:token@host:port` verbatim, as Tekton's creds-init does. Both are
    read back by `git credential fill`. The environment is clean_env() plus HOME, XDG_CONFIG_HOME,
    GIT_CONFIG_NOSYSTEM=1 and GIT_TERMINAL_PROMPT=0; no credentials in it.
    """
    home = (Path(tmp_path) / "home").resolve()  # git runs in other cwds; a relative HOME would break
    home.mkdir(parents=True, exist_ok=True)
    env = clean_env(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    gitconfig = "[credential]\n\thelper = store\n"
    if url is not None and token is not None:
        parts = urllib.parse.urlsplit(url)
        user = user or DEFAULT_USER
        if style == "tekton":
            gitconfig += (
                f'[credential "{parts.scheme}://{parts.netloc.rpartition("@")[2]}"]\n\tusername = {user}\n'
            )
    (home / ".gitconfig").write_text(gitconfig)
    if url is not None and token is not None:
        assert user is not None
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        if style == "tekton":
            quote = urllib.parse.quote
            line = f"{parts.scheme}://{quote(user, safe='')}:{quote(token, safe='')}@{host}\n"
            with (home / ".git-credentials").open("a") as fh:
                fh.write(line)
        else:
            request = f"protocol={parts.scheme}\nhost={host}\nusername={user}\npassword={token}\n\n"
            run_git("credential", "approve", input=request.encode(), env=env)
        (home / ".git-credentials").chmod(0o600)
    return env


def clone(
    url: str,
    dest: Path,
    token: str | None = None,
    detached: bool = False,
    depth: int | None = None,
    *,
    user: str = DEFAULT_USER,
    revision: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """A checkout of `url` at `dest`; returns `dest`.

    detached=False: a plain `git clone` (a branch checked out, origin/* refs, origin/HEAD).
    detached=True: what Tekton's git resource does: `git init`, `git remote add origin URL`,
    `git fetch --depth=N origin --update-head-ok --force <revision>` (N = depth or 1, revision = the
    remote HEAD unless given; a branch name or a SHA), `git checkout -f FETCH_HEAD` → detached HEAD,
    shallow, no local branch.
    The token is sent as an http.extraHeader through the environment only, so `.git/config` holds the
    bare URL; pass `env` (e.g. from make_home) to authenticate through a credential helper instead.
    """
    run_env = dict(env) if env is not None else clean_env()
    if token is not None:
        run_env.update(basic_auth_env(user, token, run_env))
    dest = Path(dest)
    if not detached:
        args = ["clone", "--quiet"]
        if depth:
            args += [f"--depth={depth}"]
        if revision:
            args += ["--branch", revision]
        run_git(*args, "--", url, str(dest), env=run_env)
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    run_git("init", "--quiet", str(dest), env=run_env)
    run_git("remote", "add", "origin", url, cwd=dest, env=run_env)
    fetch = ["fetch", "--quiet", f"--depth={depth or 1}", "origin", "--update-head-ok", "--force"]
    run_git(*fetch, revision or "HEAD", cwd=dest, env=run_env)
    run_git("checkout", "--quiet", "-f", "FETCH_HEAD", cwd=dest, env=run_env)
    return dest


def copy_fixture(name: str, dest: Path) -> Path:
    """Copy fixtures/<name> to `dest` (which must not exist); returns `dest`."""
    source = FIXTURES / name
    if not source.is_dir():
        raise FileNotFoundError(f"no fixture {name!r} in {FIXTURES}")
    shutil.copytree(source, dest, symlinks=True)
    return dest


# -- pytest fixtures (import both into conftest.py) ------------------------------------------------------


@pytest.fixture(scope="session")
def git_server_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    """One server for the whole session (per xdist worker)."""
    with GitServer(tmp_path_factory.mktemp("gitserver")) as server:
        yield server


@pytest.fixture
def git_server(git_server_session: GitServer) -> GitServer:
    """The session's server, reset for this test: no repos, empty log, default credentials."""
    git_server_session.reset()
    return git_server_session


__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_USER",
    "FIXTURES",
    "GitServer",
    "LogEntry",
    "RefUpdate",
    "basic_auth_env",
    "clean_env",
    "clone",
    "copy_fixture",
    "git_server",
    "git_server_session",
    "make_home",
    "run_git",
    "token_fingerprint",
]
