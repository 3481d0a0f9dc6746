"""The pull-request step: the provider's adapter for origin (built, and so checked, before anything is
written), the base branch, the description, opening or reusing the PR, merging it or waiting for it
to land, and what a dry run would do. In updater/, the one module that consults the provider
registry (tests/test_architecture.py)."""

from __future__ import annotations

from updater import flags, log
from updater.errors import ProviderError, UpdaterError, UsageError
from updater.redact import redact

# No dataclasses or typing at run time: a deploy with -scm-provider reads this module too.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from providers.base import Adapter, PullRequest, PullRequestSpec
    from updater.gitproc import Git
    from updater.remote import Remote
    from updater.render import Rendered
    from updater.results import Result

_SECRETISH = ("token", "password", "secret", "passwd", "apikey", "api_key", "credential", "private")
_MAX_FILES_LISTED = 50

DEFAULT_BODY = """\
Automated update by **update-gitops-repo**{% if revision %} for revision `{{ revision }}`{% endif %}.
{% if files %}
Rendered {{ files | length }} file{{ "s" if files | length != 1 }}:
{% for f in files[:max_files] %}
- `{{ f.output }}` from `{{ f.template }}`
{%- endfor %}
{%- if files | length > max_files %}
- … and {{ files | length - max_files }} more
{%- endif %}
{% endif %}
{%- if substitutions %}
Substitutions:
{% for key, value in substitutions %}
- `{{ key }}` = `{{ value }}`
{%- endfor %}
{% endif %}
"""


APP_TOKEN_WAIT = 55 * 60  # seconds of -wait a GitHub App installation token (one hour) surely covers


def check_provider(name: str) -> None:
    """-scm-provider names a provider of the registry (a usage error before anything is touched)."""
    import providers

    providers.check_name(name)


class FileLine:
    """One rendered file, as the PR body lists it."""

    __slots__ = ("output", "template")

    def __init__(self, template: str, output: str) -> None:
        self.template, self.output = template, output


def title_of(message: str) -> str:
    for line in message.splitlines():
        if line.strip():
            return line.strip()
    return message.strip()


def describe(
    revision: str,
    files: Sequence[FileLine],
    substitutions: Mapping[str, str],
    template_text: str | None = None,
) -> str:
    """The PR body (Jinja2, no autoescape: it is Markdown). Values of secret-looking keys are masked."""
    import jinja2

    env = jinja2.Environment(autoescape=False, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    try:
        template = env.from_string(template_text if template_text is not None else DEFAULT_BODY)
        shown = [
            (key, "***" if any(word in key.lower() for word in _SECRETISH) else value)
            for key, value in sorted(substitutions.items())
        ]
        body = template.render(
            revision=revision, files=list(files), substitutions=shown, max_files=_MAX_FILES_LISTED
        )
    except jinja2.TemplateError as exc:
        raise UsageError(f"-pr-body-template: {exc}") from None
    return redact(body.strip() + "\n")


def read_body_template(path: str) -> str | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise UsageError(f"-pr-body-template {path}: cannot read it ({exc.strerror})") from None


def resolve_base(explicit: str, from_git: str | None, adapter_default: object) -> str:
    """-base-branch, else origin's HEAD as git reports it, else the API's default branch, else master."""
    if explicit:
        return explicit
    if from_git:
        return from_git
    try:
        value = adapter_default() if callable(adapter_default) else None
    except ProviderError as exc:
        log.warn(f"could not read the default branch ({exc}); using master")
        return "master"
    return str(value) if value else "master"


def describe_run(opts: flags.Options, rendered: Sequence[Rendered]) -> str:
    return describe(
        opts.git_revision,
        [FileLine(r.template, r.output) for r in rendered],
        opts.substitute,
        read_body_template(opts.pr_body_template),
    )


class Forge:
    """The provider's adapter for origin, built on first use; building it asks the network nothing."""

    def __init__(self, opts: flags.Options, remote: Remote) -> None:
        self.opts, self.remote = opts, remote
        self._adapter: Adapter | None = None

    def adapter(self) -> Adapter:
        if self._adapter is None:
            import providers
            from providers.base import ProviderConfig
            from updater.remote import refuse_plain_http

            config = ProviderConfig(
                origin=self.remote.origin,
                credential=self.remote.api_credential,  # git's, unless the API was given its own
                api_endpoint=self.opts.api_endpoint or None,
                ca_bundle=self.remote.ca_bundle,
                warn=log.warn,
                debug=log.debug,
            )
            opts, provider = self.opts, self.remote.provider
            bitbucket_only = opts.merge_method in flags.BITBUCKET_CLOUD_STRATEGIES
            if opts.merge_requested and bitbucket_only and provider != "bitbucket-cloud":
                raise UsageError(
                    f"-merge-method={opts.merge_method} is a Bitbucket Cloud strategy; "
                    f"{provider} takes merge, squash or rebase"
                )
            if opts.merge_when == "checks-pass" and not opts.wait and provider == "bitbucket-cloud":
                # Known before anything is pushed: nothing would merge it once its checks pass.
                raise UsageError(
                    "Bitbucket Cloud has no auto-merge: -merge-when=checks-pass needs -wait=DURATION "
                    "(e.g. -wait=30m), the longest the tool may wait for the checks to merge the pull "
                    "request itself"
                )
            adapter = providers.connect(provider, config)
            if config.credential is not None:
                api = providers.api_url(self.remote.provider, config.origin, config.api_endpoint)
                refuse_plain_http(api, "the API endpoint", self.opts.allow_insecure_http)
            if config.credential is not None and config.credential is not self.remote.credential:
                # The API has a credential of its own (-api-token-file, UPDATE_GITOPS_REPO_API_TOKEN): git's
                # push will not have tried it, so one read proves it before anything is written or pushed.
                getattr(adapter, "check_access", adapter.default_branch)()
            self._adapter = adapter
        return self._adapter

    def base_branch(self, git: Git, branch: str) -> str:
        from updater import transport

        remote = self.remote
        from_git = (
            None
            if self.opts.base_branch
            else transport.remote_default_branch(git, env=remote.auth_env, remote=remote.target)
        )
        return resolve_base(self.opts.base_branch, from_git, lambda: self.adapter().default_branch())

    def spec(
        self, rendered: Sequence[Rendered], head: str, base: str, message: str, body: str | None
    ) -> PullRequestSpec:
        from providers.base import PullRequestSpec

        opts = self.opts
        return PullRequestSpec(
            head=head,
            base=base,
            title=title_of(message),
            body=describe_run(opts, rendered) if body is None else body,
            labels=tuple(opts.labels),
            reviewers=tuple(opts.reviewers),
            draft=opts.draft,
        )


def open_and_land(
    opts: flags.Options,
    git: Git,
    forge: Forge,
    rendered: Sequence[Rendered],
    result: Result,
    branch: str,
    message: str,
    body: str | None,
) -> None:
    from providers.base import open_or_reuse
    from updater.results import PullRequestResult

    base = forge.base_branch(git, branch)
    if base == branch:
        log.warn(f"-branch {branch} is the base branch: the change is pushed there directly, no pull request")
        return
    outcome = open_or_reuse(forge.adapter(), forge.spec(rendered, branch, base, message, body))
    pr = outcome.pr
    result.pull_request = PullRequestResult(pr.url, pr.number, outcome.operation, base)
    result.operation = outcome.operation
    log.info(f"pull request {outcome.operation}: {pr.url}")
    if opts.merge_requested or opts.wait:
        credential = forge.remote.api_credential
        app = credential is not None and credential.source.startswith("GitHub App")
        if opts.wait > APP_TOKEN_WAIT and app:
            log.warn(
                f"-wait is longer than the hour a GitHub App installation token lives: a look after it "
                f"expires fails (401); rerun with -wait then, the pull request is reused ({pr.url})"
            )
        _land(opts, forge.adapter(), pr, result)


def _land(opts: flags.Options, adapter: Adapter, pr: PullRequest, result: Result) -> None:
    """Merge now or when checks pass, and/or wait until it lands (providers/merging.py)."""
    from providers import merging

    assert result.pull_request is not None
    try:
        status = merging.land(
            adapter,
            pr,
            merge=opts.merge_requested,
            when=opts.merge_when,
            method=opts.merge_method,
            wait=opts.wait,
            log=log,
        )
    except UpdaterError as exc:
        result.merge = str(getattr(exc, "merge", "failed"))
        raise
    result.merge = status
    result.pull_request.merged = status == "merged"
    how = f" ({opts.merge_method})" if opts.merge_requested else ""
    log.info(f"pull request merge: {status}{how}: {pr.url}")


def dry_run_report(
    opts: flags.Options,
    git: Git,
    remote: Remote,
    forge: Forge | None,
    rendered: Sequence[Rendered],
    result: Result,
    branch: str,
    message: str,
) -> None:
    """What the real run would do beyond the diff: the branch, the credential, the pull request.

    Configuration the real run would refuse fails the dry run the same way. Looking the pull request
    up is read-only; when the forge cannot be asked (offline, no access yet) the report says so."""
    from updater.errors import GitError, ProviderError
    from updater.results import PullRequestResult

    credential = remote.credential
    result.credential = credential.source if credential is not None else None
    result.provider = remote.provider
    log.info(f"would commit on branch {branch} with message: {message.rstrip()}")
    api = remote.api_credential
    api_own = f"; the API's: from {api.source}" if api is not None and api is not credential else ""
    log.info(
        f"credential: {'from ' + credential.source if credential else 'none found'}{api_own} "
        f"(provider {remote.provider})"
    )
    if forge is None:
        return
    forge.adapter()  # the checks the real run makes before writing anything
    try:
        base = forge.base_branch(git, branch)
        if base == branch:
            log.info(f"would push to the base branch {base} directly: no pull request")
            return
        from providers.base import open_or_reuse_plan

        spec = forge.spec(rendered, branch, base, message, None)
        operation, existing = open_or_reuse_plan(forge.adapter(), spec)
    except (ProviderError, GitError) as exc:
        log.warn(f"cannot tell which pull request the run would open or reuse: {exc}")
        result.pull_request = PullRequestResult("", 0, "unknown", opts.base_branch)
        return
    url, number = (existing.url, existing.number) if existing is not None else ("", 0)
    result.pull_request = PullRequestResult(url, number, f"would-{operation}", base)
    if existing is None:
        log.info(f"would open a pull request {branch} → {base}: {spec.title}")
    else:
        log.info(f"would {'reuse' if operation == 'reuse' else 'update'} pull request {url}")
