"""Command-line flags in Go `flag` syntax, as the original tool and every Dispatchfile use them.

`-name=value`, `-name value`, `--name=value`, bare `-name` for booleans, `-name=false`. Parsing stops
at `--`. An undefined flag is a usage error that names it, worded as Go words it.
"""

from __future__ import annotations

from updater.errors import UsageError

# Plain classes, no dataclasses or typing at run time: `-help` must cost little more than the
# interpreter itself (docs/benchmarks.md), and those imports alone would double that.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    Kind = Literal["bool", "str", "list", "int", "duration"]


class Flag:
    __slots__ = ("choices", "default", "help", "kind", "metavar", "name")

    def __init__(
        self,
        name: str,
        kind: Kind,
        default: object,
        help: str,
        metavar: str = "value",
        choices: tuple[str, ...] = (),
    ) -> None:
        self.name, self.kind, self.default, self.help = name, kind, default, help
        self.metavar, self.choices = metavar, choices


# Bitbucket Cloud's own merge strategies, beyond merge/squash/rebase (docs/providers.md).
BITBUCKET_CLOUD_STRATEGIES = (
    "merge_commit",
    "fast_forward",
    "squash_fast_forward",
    "rebase_fast_forward",
    "rebase_merge",
)

_FLAGS: list[Flag] = [
    # The original tool's flags (spec §2); names and defaults are a compatibility contract.
    Flag(
        "git-revision",
        "str",
        "",
        "source-application commit being deployed; feeds the default branch, commit message and PR title",
        "sha",
    ),
    Flag(
        "substitute",
        "list",
        (),
        "substitution key=value for $({ .key }) placeholders; repeatable; split at the "
        "first '='; the last duplicate wins",
        "key=value",
    ),
    Flag(
        "filepath",
        "str",
        "",
        "glob of templates relative to the working dir ('*' stays within a directory, '**' "
        "crosses them); default: every *.tmpl under the working dir",
        "glob",
    ),
    Flag(
        "branch",
        "str",
        "",
        "branch that receives the commit (default update-to-commit-<git-revision>)",
        "name",
    ),
    Flag(
        "base-branch",
        "str",
        "",
        "target branch of the pull request (default: the remote's default branch, else master)",
        "name",
    ),
    Flag(
        "create-pull-request", "bool", True, "open (or reuse) a pull request from -branch into -base-branch"
    ),
    Flag(
        "merge-pull-request", "bool", False, "merge the pull request through the API right after opening it"
    ),
    Flag(
        "commit-message",
        "str",
        "",
        "commit message, used verbatim (default 'update templates for commit <git-revision>')",
        "text",
    ),
    Flag("force-push", "bool", False, "push the branch with force (replaces what the remote branch holds)"),
    Flag(
        "verbose", "bool", False, "log each template, git step and API call on stderr; tracebacks on errors"
    ),
    Flag(
        "scm-provider",
        "str",
        "",
        "github, gitlab, bitbucket-cloud or bitbucket-server (default: detected from "
        "the origin host, else github)",
        "name",
    ),
    Flag("api-endpoint", "str", "", "SCM API base URL (default: derived from the origin URL)", "url"),
    Flag(
        "compile-only", "bool", False, "render the templates and write the outputs; no git or SCM work at all"
    ),
    Flag(
        "git-ignore",
        "bool",
        False,
        "accepted for compatibility: with -compile-only the working dir need not "
        "be a git repository (it never needs to be)",
    ),
    # Ours.
    Flag(
        "dry-run", "bool", False, "show the diff, branch and commit message that would be used; write nothing"
    ),
    Flag(
        "output",
        "str",
        "text",
        "text: the PR URL on stdout; json: one JSON object describing the run",
        "format",
        ("text", "json"),
    ),
    Flag(
        "missing-key",
        "str",
        "error",
        "error: a placeholder without a substitution fails the run; "
        "default: render it as <no value> like the original tool",
        "mode",
        ("error", "default"),
    ),
    Flag(
        "header",
        "bool",
        True,
        "start every output with the 'Do NOT edit' header; -header=false leaves it out",
    ),
    Flag(
        "merge-method",
        "str",
        "merge",
        "how -merge-pull-request merges: merge, squash or rebase on every provider; Bitbucket Cloud also "
        "takes its own strategy names",
        "method",
        ("merge", "squash", "rebase", *BITBUCKET_CLOUD_STRATEGIES),
    ),
    Flag(
        "merge-when",
        "str",
        "now",
        "now: merge right after opening; checks-pass: merge once the required checks pass (the "
        "forge's auto-merge where it has one, else the tool waits and merges; implies "
        "-merge-pull-request)",
        "when",
        ("now", "checks-pass"),
    ),
    Flag(
        "wait",
        "duration",
        0.0,
        "block until the pull request is merged or closed, at most this long (e.g. 90s, 30m, 1h); "
        "exit 3 if it will not land (closed, a check failed), 4 if it has not landed yet; 0: do not wait",
        "duration",
    ),
    Flag("labels", "list", (), "labels for the pull request; comma-separated or repeated", "l1,l2"),
    Flag(
        "reviewers",
        "list",
        (),
        "reviewers to request on the pull request; comma-separated or repeated",
        "u1,u2",
    ),
    Flag("draft", "bool", False, "open the pull request as a draft where the provider supports it"),
    Flag(
        "token-file",
        "str",
        "",
        "read the SCM token from this file (e.g. a mounted Kubernetes Secret)",
        "path",
    ),
    Flag(
        "api-token-file",
        "str",
        "",
        "read a token for the provider's API only from this file; git keeps the other credential "
        "(e.g. GitLab's CI_JOB_TOKEN, which cannot open merge requests)",
        "path",
    ),
    Flag(
        "results-dir",
        "str",
        "",
        "write the results (pr-url, pr-number, commit, branch, operation) as one file "
        "each into this directory, e.g. Tekton's /tekton/results",
        "dir",
    ),
    Flag(
        "ca-bundle", "str", "", "PEM file of CA certificates trusted by both git and the API client", "path"
    ),
    Flag(
        "push-attempts",
        "int",
        20,
        "how many times to push when other pipelines keep moving the branch "
        "(each retry re-renders on the new tip)",
        "n",
    ),
    Flag("pr-body-template", "str", "", "Jinja2 template file for the pull request description", "path"),
    Flag(
        "allow-insecure-http",
        "bool",
        False,
        "send the token over plain http to a host that is not this machine (origin or "
        "-api-endpoint); refused by default because anyone on the path can read it",
    ),
    Flag("version", "bool", False, "print the version and exit"),
]
FLAGS: dict[str, Flag] = {f.name: f for f in _FLAGS}
_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


class Options:
    """The parsed command line; every attribute starts at its flag's default."""

    git_revision: str
    substitute: dict[str, str]
    filepath: str
    branch: str
    base_branch: str
    create_pull_request: bool
    merge_pull_request: bool
    commit_message: str
    force_push: bool
    verbose: bool
    scm_provider: str
    api_endpoint: str
    compile_only: bool
    git_ignore: bool
    dry_run: bool
    output: str
    missing_key: str
    header: bool
    merge_method: str
    merge_when: str
    wait: float  # seconds (-wait=DURATION)
    labels: list[str]
    reviewers: list[str]
    draft: bool
    token_file: str
    api_token_file: str
    results_dir: str
    ca_bundle: str
    push_attempts: int
    pr_body_template: str
    allow_insecure_http: bool
    version: bool
    duplicate_keys: list[str]
    dry_run_args: list[int]  # argv positions that set -dry-run: the header leaves them out

    def __init__(self) -> None:
        for flag in _FLAGS:
            default = flag.default
            if flag.name == "substitute":
                default = {}
            elif flag.kind == "list":
                default = list(default)  # type: ignore[call-overload]
            setattr(self, _attr(flag.name), default)
        self.duplicate_keys = []
        self.dry_run_args = []

    @property
    def merge_requested(self) -> bool:
        """-merge-pull-request, or -merge-when=checks-pass, which implies it."""
        return self.merge_pull_request or self.merge_when == "checks-pass"

    @property
    def effective_branch(self) -> str:
        return self.branch or f"update-to-commit-{self.git_revision}"

    def effective_commit_message(self, cleanup: str = "default", comment_char: str = "#") -> str:
        """The commit message exactly as `git commit -m` would store it under the repository's
        commit.cleanup and core.commentChar (ending in a newline); the default one when -commit-message
        is empty after that clean-up, as git would refuse it."""
        if cleanup not in CLEANUP_MODES:
            # As git says it: `git commit -m` refuses to run with such a setting.
            raise UsageError(
                f"Invalid cleanup mode {cleanup} (commit.cleanup in the repository's git config)"
            )
        given = cleanup_message(self.commit_message, cleanup, comment_char) if self.commit_message else ""
        return given or f"update templates for commit {self.git_revision}\n"


CLEANUP_MODES = ("default", "verbatim", "whitespace", "strip", "scissors")
_GIT_SPACE = " \t\n\r"  # git's isspace(): not \v or \f, nor any non-ASCII space
_AUTO_COMMENT_CHARS = "#;@!$%^&|:"


def cleanup_message(message: str, mode: str = "default", comment_char: str = "#") -> str:
    """What `git commit -m MESSAGE` stores for commit.cleanup=MODE: git's strbuf_stripspace, byte for
    byte (lines split at \n only, trailing git-whitespace dropped, blank runs collapsed, blank edges
    dropped, every line ended with \n); comment lines go too with `strip`. "" when git would refuse it."""
    if mode == "verbatim":
        return message if message.endswith("\n") or not message else message + "\n"
    if mode == "strip" and comment_char == "auto":
        starts = {line[:1] for line in message.split("\n")}
        comment_char = next((c for c in _AUTO_COMMENT_CHARS if c not in starts), "#")
    strip_comments = mode == "strip"
    out: list[str] = []
    blank = False
    for line in message.split("\n"):
        if strip_comments and comment_char and line.startswith(comment_char):
            continue
        line = line.rstrip(_GIT_SPACE)
        if not line:
            blank = True
            continue
        if blank and out:
            out.append("")
        blank = False
        out.append(line)
    return "".join(line + "\n" for line in out)


class HelpRequested(Exception):
    pass


def usage() -> str:
    lines = [
        "Usage of update-gitops-repo:",
        "  update-gitops-repo [flags]",
        "",
        "Renders *.tmpl files in the GitOps repository checked out in the working directory, commits the",
        "outputs on a branch, pushes it to origin and opens (optionally merges) a pull request.",
        "Flags use Go syntax: -name=value, -name value, --name=value, -bool, -bool=false.",
        "",
    ]
    for f in _FLAGS:
        arg = "" if f.kind == "bool" else f" {f.metavar}"
        lines.append(f"  -{f.name}{arg}")
        text = f.help
        if f.choices:
            text += f" (one of: {', '.join(f.choices)})"
        shown = f.kind not in ("bool", "duration") and f.default not in ("", ())
        if (f.kind == "bool" and f.default) or shown:
            text += f" (default {str(f.default).lower() if f.kind == 'bool' else f.default})"
        lines.append(f"    \t{text}")
    lines += [
        "",
        "Credentials (never on the command line), first found wins:",
        "  -token-file, or UPDATE_GITOPS_REPO_TOKEN (+ UPDATE_GITOPS_REPO_USERNAME);",
        "  github: a GitHub App (GITHUB_APP_CLIENT_ID or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_FILE or",
        "    GITHUB_APP_PRIVATE_KEY, optionally GITHUB_APP_INSTALLATION_ID: one installation token is",
        "    minted), then GITHUB_TOKEN, GH_TOKEN, GH_ENTERPRISE_TOKEN;",
        "  gitlab: GITLAB_TOKEN, GL_TOKEN, GITLAB_OAUTH_TOKEN (OAuth2), CI_JOB_TOKEN (git only: give the",
        "    API its own token with -api-token-file or UPDATE_GITOPS_REPO_API_TOKEN);",
        "  bitbucket-cloud: BITBUCKET_EMAIL + BITBUCKET_API_TOKEN (+ BITBUCKET_USERNAME for git), or",
        "    BITBUCKET_ACCESS_TOKEN, BITBUCKET_TOKEN (app passwords were removed on 2026-07-28);",
        "  bitbucket-server: BITBUCKET_SERVER_TOKEN or BITBUCKET_TOKEN (+ BITBUCKET_USERNAME);",
        "  then git's credential helpers (~/.git-credentials), then user:token in the origin URL.",
        "  UPDATE_GITOPS_REPO_TOKEN_TYPE=oauth: the token of the tool's own sources, git's helpers or the",
        "    origin URL is an OAuth2 access token (sent as Bearer).",
        "",
        "Exit status: 0 success (changed or nothing to change), 1 runtime failure (git, network, API),",
        "2 usage or input error (bad flag, bad substitution, template error, missing key),",
        "3 the pull request will not land (closed without merging, a required check failed, auto-merge",
        "turned off), 4 it has not landed yet (-wait ran out, or checks pending and nothing waits).",
    ]
    return "\n".join(lines) + "\n"


def parse(argv: list[str]) -> Options:
    """Parse argv (without argv[0]). Raises UsageError, or HelpRequested for -help/-h."""
    opts = Options()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            if i < len(argv):
                raise UsageError(
                    f"unexpected argument {argv[i]!r}: values are given with flags, e.g. -substitute=k=v"
                )
            break
        if not arg.startswith("-") or arg == "-":
            raise UsageError(
                f"unexpected argument {arg!r}: values are given with flags, e.g. -substitute=k=v"
            )
        body = arg[2:] if arg.startswith("--") else arg[1:]
        if not body or body.startswith("-") or body.startswith("="):
            raise UsageError(f"bad flag syntax: {arg}")
        name, has_value, value = body.partition("=")
        if name in ("help", "h"):
            raise HelpRequested()
        flag = FLAGS.get(name)
        if flag is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if flag.kind == "bool":
            if name == "dry-run":
                opts.dry_run_args.append(i - 1)
            if has_value:
                if value in _TRUE:
                    setattr(opts, _attr(name), True)
                elif value in _FALSE:
                    setattr(opts, _attr(name), False)
                else:
                    raise UsageError(f'invalid boolean value "{value}" for -{name}: parse error')
            else:
                setattr(opts, _attr(name), True)
            continue
        if not has_value:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        _set(opts, flag, value)
    return opts


def wants_json(argv: list[str]) -> bool:
    """Whether argv asks for -output=json, read as parse() would, for a command line parse() refused:
    the JSON object with `error` is printed for usage errors too. Flags after the bad one count."""
    wanted = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            break
        body = arg[2:] if arg.startswith("--") else arg[1:] if arg.startswith("-") else ""
        name, has_value, value = body.partition("=")
        flag = FLAGS.get(name)
        if flag is None or flag.kind == "bool":
            continue
        if not has_value:
            if i >= len(argv):
                break
            value = argv[i]
            i += 1
        if name == "output":
            wanted = value == "json"
    return wanted


def _branch_name(value: str) -> str:
    """A branch may be given as its full ref, as CI systems name it (GITHUB_REF, Tekton params)."""
    return value.removeprefix("refs/heads/") or value  # "refs/heads/" alone: refused as it is


def _attr(name: str) -> str:
    return name.replace("-", "_")


def _set(opts: Options, flag: Flag, value: str) -> None:
    if flag.choices and value not in flag.choices:
        raise UsageError(f'invalid value "{value}" for -{flag.name}: use one of {", ".join(flag.choices)}')
    if flag.name == "substitute":
        key, sep, val = value.partition("=")
        if not sep:
            raise UsageError(f'invalid value "{value}" for -substitute: expected key=value')
        key = key.strip()
        if not key:
            raise UsageError(f'invalid value "{value}" for -substitute: the key before "=" is empty')
        try:
            val.encode("utf-8")
        except UnicodeEncodeError:  # bytes the locale could not decode reach Python as surrogates
            raise UsageError(f"-substitute {key}: the value is not valid UTF-8") from None
        if key in opts.substitute:
            opts.duplicate_keys.append(key)
        opts.substitute[key] = val
    elif flag.kind == "list":
        getattr(opts, _attr(flag.name)).extend(item.strip() for item in value.split(",") if item.strip())
    elif flag.kind == "int":
        try:
            number = int(value)
        except ValueError:
            raise UsageError(f'invalid value "{value}" for -{flag.name}: parse error') from None
        if number < 1:
            raise UsageError(f'invalid value "{value}" for -{flag.name}: must be at least 1')
        setattr(opts, _attr(flag.name), number)
    elif flag.kind == "duration":
        setattr(opts, _attr(flag.name), parse_duration(value, flag.name))
    elif flag.name in ("branch", "base-branch"):
        setattr(opts, _attr(flag.name), _branch_name(value))
    else:
        setattr(opts, _attr(flag.name), value)


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(value: str, name: str = "wait") -> float:
    """Seconds in a Go duration (`90s`, `30m`, `1h30m`, `1.5h`, `0`), as Go's flag.Duration reads it.

    A number needs its unit (`30` is refused, as Go refuses it), except 0; negatives are refused."""
    import re  # only a duration flag needs it

    text = value.strip()
    if text in ("0", "+0"):
        return 0.0
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", text.lstrip("+"))
    rebuilt = "".join(number + unit for number, unit in parts)
    if not parts or rebuilt != text.lstrip("+"):
        hint = "missing unit in duration" if re.fullmatch(r"[0-9.]+", text) else "invalid duration"
        raise UsageError(
            f'invalid value "{value}" for -{name}: {hint} (use e.g. 90s, 30m, 1h30m; 0 means do not wait)'
        )
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
