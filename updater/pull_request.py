"""The pull-request step: pick the base, describe the change, open or reuse the PR, merge it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from updater import log
from updater.errors import ProviderError, UsageError
from updater.redact import redact

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


@dataclass(frozen=True)
class FileLine:
    template: str
    output: str


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
