"""Where the token comes from (spec §6), in one place for git and for the provider APIs.

First found wins:
  1. the tool's own: -token-file, or UPDATE_GITOPS_REPO_TOKEN (+ UPDATE_GITOPS_REPO_USERNAME);
  2. the provider's usual variables (GITHUB_TOKEN, GITLAB_TOKEN, CI_JOB_TOKEN, BITBUCKET_*);
  3. git's credential helpers (`git credential fill`), which read ~/.git-credentials as Tekton
     writes it and understand its encodings (a non-default port is stored as host%3aPORT);
  4. user:token embedded in the origin URL.
Tokens are never put on a command line: git gets them through environment variables only.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from updater import redact
from updater.errors import UsageError
from updater.remote import Origin

Kind = Literal["token", "job-token", "app-password", "access-token"]

# The username git should send with a token when none is known, per provider. Forges ignore it for
# PATs, but some require a specific one (GitLab job tokens, Bitbucket Cloud access tokens).
GIT_USERNAME = {
    "github": "x-access-token",
    "gitlab": "oauth2",
    "bitbucket-cloud": "x-token-auth",
    "bitbucket-server": "x-token-auth",
}


@dataclass(frozen=True)
class Credential:
    secret: str = field(repr=False)
    username: str | None
    kind: Kind
    source: str  # where it was found, for -verbose and error messages; never the value

    def git_username(self, provider: str) -> str:
        if self.kind == "job-token":
            return "gitlab-ci-token"
        return self.username or GIT_USERNAME.get(provider, "x-access-token")

    def git_env(self, provider: str) -> dict[str, str]:
        """An http.extraHeader for git, passed only through the environment (git >= 2.31)."""
        basic = base64.b64encode(f"{self.git_username(provider)}:{self.secret}".encode()).decode()
        return {"http.extraHeader": f"Authorization: Basic {basic}"}


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _from_tool(token_file: str | None) -> Credential | None:
    username = _env("UPDATE_GITOPS_REPO_USERNAME")
    if token_file:
        try:
            secret = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"-token-file {token_file}: cannot read it ({exc.strerror})") from None
        if not secret:
            raise UsageError(f"-token-file {token_file} is empty")
        return Credential(secret, username, "token", f"-token-file {token_file}")
    env_secret = _env("UPDATE_GITOPS_REPO_TOKEN")
    if env_secret:
        return Credential(env_secret, username, "token", "UPDATE_GITOPS_REPO_TOKEN")
    return None


def _from_provider_env(provider: str) -> Credential | None:
    if provider == "github":
        for name in ("GITHUB_TOKEN", "GH_TOKEN", "GH_ENTERPRISE_TOKEN"):
            if secret := _env(name):
                return Credential(secret, None, "token", name)
    elif provider == "gitlab":
        for name in ("GITLAB_TOKEN", "GL_TOKEN"):
            if secret := _env(name):
                return Credential(secret, None, "token", name)
        if secret := _env("CI_JOB_TOKEN"):
            return Credential(secret, None, "job-token", "CI_JOB_TOKEN")
    elif provider == "bitbucket-cloud":
        user = _env("BITBUCKET_USERNAME")
        if user and (secret := _env("BITBUCKET_APP_PASSWORD")):
            return Credential(secret, user, "app-password", "BITBUCKET_APP_PASSWORD")
        for name in ("BITBUCKET_ACCESS_TOKEN", "BITBUCKET_TOKEN"):
            if secret := _env(name):
                return Credential(secret, "x-token-auth", "access-token", name)
    elif provider == "bitbucket-server":
        for name in ("BITBUCKET_SERVER_TOKEN", "BITBUCKET_TOKEN"):
            if secret := _env(name):
                return Credential(secret, _env("BITBUCKET_USERNAME"), "token", name)
    return None


def git_credential_fill(origin: Origin) -> Credential | None:
    """Ask git's configured helpers (credential.helper = store reads ~/.git-credentials)."""
    if not origin.is_http:
        return None
    request = f"protocol={origin.scheme}\nhost={origin.netloc}\n"
    if origin.username:
        request += f"username={origin.username}\n"
    env = dict(os.environ)
    # Never prompt: no terminal, no askpass program; a missing credential is just "none found".
    env["GIT_TERMINAL_PROMPT"] = "0"
    for name in ("GIT_ASKPASS", "SSH_ASKPASS"):
        env.pop(name, None)
    env.update(config_env({"core.askPass": "", "credential.interactive": "never"}, env))
    try:
        done = subprocess.run(
            ["git", "credential", "fill"],
            input=request + "\n",
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    fields = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    secret = fields.get("password")
    if not secret:
        return None
    username = fields.get("username") or None
    redact.register(secret, username)
    return Credential(secret, username, "token", "git credential helper")


def config_env(settings: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """git config passed as GIT_CONFIG_COUNT/KEY/VALUE: never on argv, never on disk.

    Appends to any GIT_CONFIG_* entries already present in `base`.
    """
    source: Mapping[str, str] = os.environ if base is None else base
    start = int(source.get("GIT_CONFIG_COUNT", "0") or 0)
    env: dict[str, str] = {}
    for offset, (key, value) in enumerate(settings.items()):
        env[f"GIT_CONFIG_KEY_{start + offset}"] = key
        env[f"GIT_CONFIG_VALUE_{start + offset}"] = value
    env["GIT_CONFIG_COUNT"] = str(start + len(settings))
    return env


def find_credential(origin: Origin, provider: str, token_file: str | None = None) -> Credential | None:
    """The first credential found, in the order of spec §6; None if there is none anywhere."""
    found = _from_tool(token_file) or _from_provider_env(provider) or git_credential_fill(origin)
    if found is None and origin.password:
        found = Credential(origin.password, origin.username, "token", "origin URL")
    if found is not None:
        redact.register(found.secret, found.username)
        if found.username is None and origin.username and found.source != "origin URL":
            # Bitbucket needs a real username for git; the origin URL often carries it.
            found = Credential(found.secret, origin.username, found.kind, found.source)
    return found
