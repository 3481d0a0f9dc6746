"""The origin remote, settled once before any write: which provider serves it, how git authenticates.

origin's URL is parsed by updater/values.py (`parse_origin`), which the provider adapters share; this
module picks the provider the origin names, and gathers the credential, CA bundle and proxies for git.
Checking a -scm-provider name against the registry is updater/pull_request.py's: nothing here
imports `providers`.
"""

from __future__ import annotations

import os
import urllib.parse

from updater.errors import GitError, UsageError
from updater.values import Origin, is_ghe_com, parse_origin

TYPE_CHECKING = False
if TYPE_CHECKING:
    from updater.flags import Options
    from updater.values import Credential


def detect_provider(origin: Origin) -> str:
    """The -scm-provider default: from the host, else from well-known hints, else github (spec §2)."""
    return recognise_provider(origin) or "github"


def recognise_provider(origin: Origin) -> str | None:
    """The provider the origin itself names; None when the github default would only be a guess."""
    host = origin.host
    if host == "github.com" or host.endswith(".github.com") or is_ghe_com(host):
        return "github"  # is_ghe_com: Enterprise Cloud with data residency, SUB.ghe.com
    if host == "gitlab.com":
        return "gitlab"
    if host == "bitbucket.org":
        return "bitbucket-cloud"
    # Beyond the original: self-hosted servers say what they are often enough to not guess github.
    ci_gitlab = os.environ.get("CI_SERVER_HOST", "").lower()
    if host and (host == ci_gitlab or host.startswith("gitlab.")):
        return "gitlab"
    if origin.path.startswith("scm/") or "/scm/" in f"/{origin.path}" or host.startswith("bitbucket."):
        return "bitbucket-server"
    if os.environ.get("GITHUB_SERVER_URL", "").lower().rstrip("/").endswith(f"//{host}") and host:
        return "github"  # GitHub Actions on this very server (Enterprise included)
    return None


def is_loopback(host: str) -> bool:
    """This machine, by name or address: plain http to it crosses no network. No DNS is asked."""
    import ipaddress

    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_plain_http(url: str, what: str, allowed: bool) -> None:
    """A token sent over http to another machine can be read by anyone on the path: refuse unless asked.
    That machine is the host, or the http proxy the request would go through."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "http" or allowed:
        return
    where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    advice = "use https, or pass -allow-insecure-http if that network is trusted"
    if not is_loopback(parts.hostname or ""):
        raise UsageError(
            f"{what} {where} is plain http: the token would cross the network unencrypted; {advice}"
        )
    proxy = _http_proxy_for(parts.hostname or "")
    if proxy and not is_loopback(proxy):
        raise UsageError(
            f"{what} {where} is plain http through the proxy {proxy}: the token would cross the "
            f"network unencrypted; {advice}, or name the host in no_proxy"
        )


def _http_proxy_for(host: str) -> str | None:
    """The host of the proxy git (curl) or requests would send a plain-http request for `host` through:
    http_proxy/HTTP_PROXY, else all_proxy/ALL_PROXY, unless no_proxy/NO_PROXY names the host (or a
    domain of it, or `*`). Read here without urllib.request, which a deploy should not have to import."""
    proxy = next(
        (os.environ[n] for n in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY") if os.environ.get(n)),
        None,
    )
    if not proxy:
        return None
    host = host.strip("[]").lower().rstrip(".")
    for entry in (os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or "").split(","):
        entry = entry.strip().lower().lstrip(".").rstrip(".")
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return None
        if entry and entry.partition(":")[0] == host:  # host:port
            return None
    return urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}").hostname or ""


class Remote:
    """origin, the provider serving it, and how git authenticates to it: settled before any write."""

    __slots__ = ("api_credential", "auth_env", "ca_bundle", "credential", "origin", "provider", "target")

    def __init__(
        self,
        origin: Origin,
        provider: str,
        credential: Credential | None,
        auth_env: dict[str, str],
        target: str,
        ca_bundle: str | None = None,
        api_credential: Credential | None = None,
    ) -> None:
        self.origin = origin
        self.provider = provider
        self.credential = credential  # what git sends
        # What the provider's API gets: -api-token-file / UPDATE_GITOPS_REPO_API_TOKEN, else git's.
        self.api_credential = api_credential or credential
        self.auth_env = auth_env
        self.target = target  # what git pushes to: "origin", or origin's URL without the user:token in it
        self.ca_bundle = ca_bundle  # the CA certificates git and the API client both trust; None: defaults


def resolve_remote(opts: Options, origin_url: str | None, urls_git_uses: list[str] | None = None) -> Remote:
    """origin, its provider, the credential and CA bundle, and git's auth environment, settled up front."""
    from updater import log
    from updater.credentials import (
        PROXY_VARIABLES,
        find_api_credential,
        find_ca_bundle,
        find_credential,
        proxy_env,
    )
    from updater.gitproc import config_env

    if origin_url is None:
        raise GitError("the repository has no remote named origin: add it with 'git remote add origin URL'")
    origin = parse_origin(origin_url)
    provider = opts.scm_provider or recognise_provider(origin)
    if provider is None:
        provider = "github"
        if opts.create_pull_request and not opts.api_endpoint:
            log.warn(
                f"-scm-provider not given and {origin.host or 'the origin'} does not say which forge it is: "
                "guessed github (set -scm-provider to be sure)"
            )
    # One CA bundle and one set of proxies for git and the API client (docs/tls-and-proxies.md).
    ca = find_ca_bundle(opts.ca_bundle or None)
    env = proxy_env()
    credential = None
    if provider == "github":  # a GitHub App's installation token, minted now (updater/github_app.py)
        from updater.github_app import settle

        credential = settle(opts, origin, ca.path if ca else None, refuse_plain_http)
    if credential is None:
        credential = find_credential(origin, provider, opts.token_file or None)
    api_credential = find_api_credential(provider, opts.api_token_file or None)
    if api_credential is not None:
        log.debug(f"the {provider} API authenticates with the token from {api_credential.source}")
    settings: dict[str, str] = {}
    if credential is not None and origin.is_http:
        # What git really talks to: url.*.insteadOf / pushInsteadOf and remote.origin.pushurl applied.
        for url in urls_git_uses or [origin.url]:
            refuse_plain_http(url, "origin", opts.allow_insecure_http)
        settings.update(credential.git_env(provider))
        # git sends our header; its credential helpers must stay out of it. Otherwise a refused token
        # makes git ask them, retry with what they hold and, when that fails too, tell them to erase
        # it: a wrong GITHUB_TOKEN would delete the user's stored credential. The empty value clears
        # the helper list for the tool's own commands only.
        settings["credential.helper"] = ""
        # Nor may git ask an askpass program (GIT_ASKPASS, core.askPass, SSH_ASKPASS): an empty
        # GIT_ASKPASS ends git's search for one, so a refused token fails at once instead of prompting.
        env["GIT_ASKPASS"] = ""
        log.debug(f"git authenticates to {origin.netloc} with the token from {credential.source}")
    if ca is not None:
        settings.update(ca.git_config())
        env.update(ca.git_env())
        log.debug(f"git and the API client trust the CA certificates in {ca.path} (from {ca.source})")
    proxies = [
        f"{n}={os.environ[n]}" for n in (*PROXY_VARIABLES, "no_proxy", "NO_PROXY") if os.environ.get(n)
    ]
    if proxies:
        log.debug(f"git and the API client use the proxy settings {' '.join(proxies)}")
    # git hands a URL with user:token@ to its http helper on the command line, visible in `ps`:
    # talk to the same URL without it and send the token as a header instead.
    target = origin.url_without_credentials if origin.is_http and origin.password else "origin"
    auth_env = {**(config_env(settings) if settings else {}), **env}
    return Remote(origin, provider, credential, auth_env, target, ca.path if ca else None, api_credential)
