"""The entrypoint. A run reads as its story:

parse flags → find templates → render → commit → push → open or reuse the pull request (→ merge).
Each step lives in the module named after it; errors are exceptions from updater.errors, turned into
one line on stderr and an exit status here and nowhere else.
"""

from __future__ import annotations

import os
import signal
import sys

from updater import flags
from updater.errors import (
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    GitError,
    Terminated,
    UpdaterError,
    UsageError,
    exit_code_for,
)

# Only what parsing needs is imported up front: `-help` and usage errors stay as fast as the
# interpreter allows (docs/benchmarks.md); every step imports its own modules when it runs.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, NoReturn

    from updater.gitproc import Git
    from updater.pull_request import Forge
    from updater.remote import Remote
    from updater.render import Rendered
    from updater.results import Result


def console() -> NoReturn:
    """The console script: main(), then exit without tearing the interpreter down.

    Python's finalisation (every module and object freed one by one) costs a deploy ~4 ms, a tenth
    of the sed + git baseline it is measured against (docs/benchmarks.md). Nothing is lost by
    skipping it: every file the tool writes is closed when main() returns, no atexit handler is
    registered, and the two standard streams are flushed here.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: started with that descriptor closed
                stream.flush()
        except (OSError, ValueError):  # a closed pipe: the output did not arrive (Python's exit says 120)
            code = code or 120
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    try:
        opts = flags.parse(argv[1:])
    except flags.HelpRequested:
        sys.stdout.write(flags.usage())
        return EXIT_OK
    except UsageError as exc:
        from updater import log

        log.error(f"{exc} (see -help)")
        if flags.wants_json(argv[1:]):
            # Machine readers get the object with `error` whatever failed, flag errors included.
            from updater.results import Result, emit

            failed = Result()
            failed.error, failed.exit_code = f"{exc} (see -help)", EXIT_USAGE
            emit(failed, "json", "")
        return EXIT_USAGE
    from updater import log
    from updater.results import Result, emit

    log.set_verbose(opts.verbose)
    if opts.version:
        from updater import __version__

        print(f"update-gitops-repo {__version__}")
        return EXIT_OK

    result = Result()
    previous = _raise_on_sigterm()
    try:
        run(opts, argv, result)
    except UpdaterError as exc:
        result.error, result.exit_code = str(exc), exc.exit_code
        log.error(str(exc))
    except Terminated:
        # Locks released, outputs and moved refs put back; a push already on the wire may still land
        # on origin (a rerun then finds it there).
        result.error, result.exit_code = "terminated (SIGTERM); local changes put back", EXIT_TERMINATED
        log.error(result.error)
    except KeyboardInterrupt:
        result.error, result.exit_code = "interrupted", 130
        log.error("interrupted")
    except Exception as exc:  # a bug: still one line, the traceback only with -verbose
        if opts.verbose:
            import traceback  # only here: every run would pay for it (and linecache, tokenize)

            traceback.print_exc()
        result.error, result.exit_code = f"unexpected {type(exc).__name__}: {exc}", exit_code_for(exc)
        log.error(f"{result.error} (rerun with -verbose for the traceback)")
    finally:
        signal.signal(signal.SIGTERM, previous)
    try:
        emit(result, opts.output, opts.results_dir)
    except OSError as exc:
        log.error(f"cannot write the results: {exc}")
        return result.exit_code or 1
    return result.exit_code


def _raise_on_sigterm() -> Any:
    """SIGTERM becomes an exception, as SIGINT is, instead of ending the process where it stands: a
    run stopped while it holds .git/index.lock or has moved the branch puts everything back."""

    def terminated(_signum: int, _frame: object) -> None:
        raise Terminated()

    return signal.signal(signal.SIGTERM, terminated)


def run(opts: flags.Options, argv: list[str], result: Result) -> None:
    from updater import templates

    # Everything that can be checked is checked before anything is written.
    _check_flags(opts)
    selector = templates.Selector(templates.check_pattern(opts.filepath))
    workdir = os.getcwd()
    git = state = remote = None
    if not opts.compile_only:
        from updater.repostate import open_checkout

        git = open_checkout(workdir)  # git starts looking at the checkout while the modules below load

    from updater import log, render
    from updater.results import FileResult

    if git is None:
        boundary = _repository_top(workdir) or workdir
    else:
        from updater.remote import resolve_remote
        from updater.repostate import read_state

        state = read_state(git)
        boundary = state.top
        urls = state.urls_git_uses(state.origin_url) if state.origin_url else None
        remote = resolve_remote(opts, state.origin_url, urls)

    # Find templates.
    found = templates.find_in_directory(workdir, selector, boundary)
    if not found:
        log.info(f"no templates found{' matching ' + opts.filepath if opts.filepath else ''}; nothing to do")
        return
    # Render, all in memory first: one bad template means nothing is written.
    workspace = render.Workspace(workdir, boundary)
    # The header records the command as the real run has it: a dry run shows exactly those bytes.
    header_argv = [a for i, a in enumerate(argv) if i - 1 not in opts.dry_run_args] if opts.header else None
    missing_default = opts.missing_key == "default"
    rendered = render.render_all(
        workspace, found, opts.substitute, argv=header_argv, missing_default=missing_default
    )
    result.files = [FileResult(r.template, r.output, r.changed) for r in rendered]
    for item in rendered:
        log.debug(f"{item.template} → {item.output}{'' if item.changed else ' (unchanged)'}")
    changed = [r for r in rendered if r.changed]
    log.info(f"rendered {len(rendered)} template{'s' if len(rendered) != 1 else ''}, {len(changed)} changed")
    branch = opts.effective_branch
    # Exactly what `git commit -m` would store in this repository (its commit.cleanup, its comment char).
    config = state.config if state is not None else {}
    message = opts.effective_commit_message(
        config.get("commit.cleanup", "default").lower(), config.get("core.commentchar", "#")
    )

    body = None
    if opts.pr_body_template and opts.create_pull_request and not opts.compile_only:
        # A custom PR body is read and rendered before anything is written: a missing file or a
        # Jinja error is a usage error, not a failure after the push.
        from updater import pull_request

        body = pull_request.describe_run(opts, rendered)
    # Everything the forge needs that can be known without the network (a token, an API endpoint,
    # the repository's path, https) is checked now, before anything is written or pushed. Only when
    # there is something to publish: a rerun with nothing to do never loads an SDK.
    forge = None
    if (
        remote is not None
        and opts.create_pull_request
        and (changed or (state and state.edited) or opts.dry_run)
    ):
        forge = _forge(opts, remote, check=not opts.dry_run)  # a dry run reports what fails instead

    if opts.dry_run:
        result.operation, result.changed, result.branch = "dry-run", bool(changed), branch
        result.dry_run = True
        result.diff = _unified_diff(changed)
        if not opts.compile_only:
            assert git is not None and remote is not None
            from updater import pull_request

            pull_request.dry_run_report(opts, git, remote, forge, rendered, result, branch, message)
        return
    if opts.compile_only:
        workspace.write(rendered)
        result.operation, result.changed = "rendered", bool(changed)
        return
    assert git is not None and state is not None and remote is not None

    def rerender(template: str, raw: bytes) -> bytes:
        return render.render_bytes(
            raw, opts.substitute, template=template, argv=header_argv, missing_default=missing_default
        )

    # Write and commit; if either fails (a signal held while writing included) the outputs are put
    # back: nothing is lost.
    from updater import publish

    templates_written = {r.template: r.content for r in rendered}
    try:
        workspace.write(rendered)
        local = publish.commit_worktree(git, state, templates_written, len(changed), message, branch)
    except BaseException:
        workspace.restore(rendered)
        raise
    if local is None:
        # Nothing to commit. Unless this checkout holds a run of ours that did not finish: its commit
        # not pushed (the push failed), or pushed without its pull request (the API call failed).
        local = publish.unpublished_head(git, state, branch, templates_written, message)
        if local is None:
            if not (opts.create_pull_request and publish.pull_request_pending(git, state, branch)):
                log.info("nothing changed: the outputs already match the repository; no commit, no push")
                return
            log.info(f"origin/{branch} has this change but its pull request step did not finish: doing it")
            result.changed, result.branch, result.operation = True, branch, "pushed"
            result.commit = state.head or ""
            _pull_request_step(opts, git, forge, remote, rendered, result, branch, message, body)
            return
        log.info(f"{branch} is at {local.commit[:12]}, which origin was not seen to receive: pushing it")
        if opts.create_pull_request and forge is None:
            forge = _forge(opts, remote)  # checked before the push, as for a new commit
    else:
        log.info(f"committed {local.commit[:12]} on {branch}: {message.splitlines()[0]}")

    result.changed, result.branch, result.commit, result.operation = True, branch, local.commit, "committed"

    # Push, converging with whoever else pushes to the branch.
    try:
        published = publish.push_converging(
            git,
            state,
            local,
            branch=branch,
            message=message,
            selector=selector,
            render=rerender,
            auth_env=remote.auth_env,
            remote=remote.target,
            force=opts.force_push,
            attempts=opts.push_attempts,
        )
    except GitError as exc:
        raise _with_hint(exc, remote) from None
    result.commit, result.pushed, result.operation = published.commit, published.pushed, "pushed"
    if published.pushed:
        log.info(f"pushed {published.commit[:12]} to origin/{branch}")

    # Open or reuse the pull request (and merge it).
    if opts.create_pull_request:
        _pull_request_step(opts, git, forge, remote, rendered, result, branch, message, body)


def _forge(opts: flags.Options, remote: Remote, *, check: bool = True) -> Forge:
    """The forge's adapter for origin; built now (asking the network nothing) when `check`, so that a
    configuration it refuses fails before anything is written or pushed."""
    from updater import pull_request

    forge = pull_request.Forge(opts, remote)
    if check:
        forge.adapter()
    return forge


def _pull_request_step(
    opts: flags.Options,
    git: Git,
    forge: Forge | None,
    remote: Remote,
    rendered: Sequence[Rendered],
    result: Result,
    branch: str,
    message: str,
    body: str | None,
) -> None:
    """Open or reuse the pull request (and land it), then note in the checkout that this commit's
    pull request step finished: a rerun here with nothing to do then asks the forge nothing."""
    from updater import publish, pull_request

    forge = forge or _forge(opts, remote, check=False)
    pull_request.open_and_land(opts, git, forge, rendered, result, branch, message, body)
    publish.pull_request_done(git, branch, result.commit)


def _check_flags(opts: flags.Options) -> None:
    """What the flags alone can tell is wrong, said before any file or repository is touched."""
    from updater import log

    for key in dict.fromkeys(opts.duplicate_keys):
        log.warn(f"-substitute {key} given more than once; the last value wins")
    if not opts.compile_only and not opts.git_revision and not opts.branch:
        raise UsageError("set -git-revision (or -branch): it names the branch and the commit")
    if not opts.compile_only:
        from updater.branches import branch_name_problem

        for flag, name in (("-branch", opts.effective_branch), ("-base-branch", opts.base_branch)):
            problem = branch_name_problem(name) if name else None
            if problem:
                origin = "" if flag != "-branch" or opts.branch else " (made from -git-revision)"
                raise UsageError(f"{flag} {name!r}{origin} is not a valid git branch name: {problem}")
    if opts.scm_provider and not opts.compile_only:
        from updater import pull_request

        pull_request.check_provider(opts.scm_provider)
    if opts.merge_pull_request and not opts.create_pull_request:
        log.warn(
            "-merge-pull-request does nothing with -create-pull-request=false: no pull request is opened"
        )
    elif (opts.merge_when != "now" or opts.wait) and not opts.create_pull_request:
        log.warn("-merge-when and -wait do nothing with -create-pull-request=false: no pull request opens")
    if opts.api_endpoint:
        _check_api_endpoint(opts.api_endpoint)
    if opts.results_dir:
        _check_results_dir(opts.results_dir)


def _check_api_endpoint(url: str) -> None:
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a bad port or IPv6 address
        parts, port_ok = None, False
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname or not port_ok:
        raise UsageError(
            f"-api-endpoint {url!r} is not an http(s) URL with a host, e.g. https://git.example.com/api/v3"
        )


# How git words a server certificate it could not verify (GnuTLS builds, then OpenSSL builds).
_TLS_MARKERS = ("certificate verification failed", "ssl certificate problem", "certificate verify failed")


def _with_hint(exc: GitError, remote: Remote) -> GitError:
    """git names no remedy: for an untrusted certificate, the one setting that fixes git and the API;
    for credentials Bitbucket Cloud refused, what it takes since app passwords were removed."""
    from updater.values import tls_hint

    text = str(exc)
    if any(marker in text.lower() for marker in _TLS_MARKERS):
        return GitError(f"{text}; {tls_hint(remote.ca_bundle)}")
    if remote.provider == "bitbucket-cloud" and "refused the credentials" in text:
        from updater.credentials import BITBUCKET_CLOUD_ADVICE

        return GitError(
            f"{text}; Bitbucket Cloud no longer takes app passwords (removed 2026-07-28): "
            f"{BITBUCKET_CLOUD_ADVICE}"
        )
    return exc


def _check_results_dir(directory: str) -> None:
    """The results are written last; a directory that cannot take them must fail before any write."""
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"-results-dir {directory}: cannot use it as a directory ({exc.strerror})") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"-results-dir {directory}: the directory is not writable")


def _repository_top(start: str) -> str | None:
    path = os.path.realpath(start)
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def _unified_diff(changed: Sequence[Rendered]) -> str:
    import difflib  # only -dry-run needs it

    chunks: list[str] = []
    for item in changed:
        old = (item.previous or b"").decode("utf-8", "replace").splitlines(keepends=True)
        new = item.content.decode("utf-8", "replace").splitlines(keepends=True)
        fromfile = f"a/{item.output}" if item.previous is not None else "/dev/null"
        for line in difflib.unified_diff(old, new, fromfile, f"b/{item.output}"):
            chunks.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(chunks)


if __name__ == "__main__":
    sys.exit(main())
