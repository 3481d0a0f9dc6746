"""The registry: -scm-provider names → adapter modules, imported only when used.

To add a provider, write `providers/<name>.py` with `connect(config: ProviderConfig) -> Adapter`
and add one line here. In the core, only updater/pull_request.py consults this registry.
"""

from __future__ import annotations

from updater.errors import ProviderError, UsageError

# Not `from typing import TYPE_CHECKING`: a deploy that opens no pull request reads this registry
# too, and importing typing costs it ~2 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from providers.base import Adapter, ProviderConfig
    from updater.values import Origin

REGISTRY: dict[str, str] = {
    "github": "providers.github",
    "gitlab": "providers.gitlab",
    "bitbucket-cloud": "providers.bitbucket_cloud",
    "bitbucket-server": "providers.bitbucket_server",
}


def names() -> list[str]:
    return list(REGISTRY)


def check_name(name: str) -> str:
    if name not in REGISTRY:
        raise UsageError(f"-scm-provider={name} is not supported; use one of: {', '.join(REGISTRY)}")
    return name


def connect(name: str, config: ProviderConfig) -> Adapter:
    """The adapter for `name`. Building it asks the network nothing, so the core builds it before
    anything is written: a missing token or an underivable API endpoint fails there, not after a push."""
    adapter: Adapter = _module(name).connect(config)
    return adapter


def api_url(name: str, origin: Origin, override: str | None) -> str:
    """The API root an adapter for `name` talks to (every adapter module has `api_base`)."""
    url: str = _module(name).api_base(origin, override)
    return url


def _module(name: str) -> Any:
    import importlib

    module_name = REGISTRY[check_name(name)]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        # Never pretend: a provider without an adapter cannot open pull requests.
        raise ProviderError(
            f"pull requests on {name} are not available in this build; "
            "use -create-pull-request=false to only push the branch"
        ) from None
    return module
