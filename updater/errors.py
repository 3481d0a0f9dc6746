"""The few exception types the tool raises, and the one place they become exit statuses.

Every failure a user can cause or meet is one of these; anything else is a bug and is reported
as such (exit 1, with the traceback only under -verbose).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # git, network, API: the run was fine, the world said no
EXIT_USAGE = 2  # bad flag, bad substitution, template error, missing key: fix the input
# -merge-when / -wait (docs/providers.md, "Merge when checks pass"): the pull request did not land.
EXIT_NOT_MERGED = 3  # it will not land as it is: closed without merging, a check failed, auto-merge off
EXIT_NOT_MERGED_YET = 4  # it may still land: -wait ran out, or there was no wait and checks are pending


class UpdaterError(Exception):
    """A failure with a one-line message that says what failed and what to do."""

    exit_code = EXIT_FAILURE


class UsageError(UpdaterError):
    """The command line is wrong (undefined flag, bad value)."""

    exit_code = EXIT_USAGE


class TemplateError(UpdaterError):
    """A template cannot be rendered: syntax, missing key, unsafe or unreadable path."""

    exit_code = EXIT_USAGE


class GitError(UpdaterError):
    """A git operation failed (not a repository, push refused, ...)."""


class ProviderError(UpdaterError):
    """The SCM API refused or failed (auth, not found, merge refused, retries exhausted)."""


class NotMerged(ProviderError):
    """The pull request will not land as it is (closed without merging, a required check failed,
    auto-merge turned off while waiting). `merge` is the result's merge status."""

    exit_code = EXIT_NOT_MERGED

    def __init__(self, message: str, merge: str) -> None:
        super().__init__(message)
        self.merge = merge


class NotMergedYet(NotMerged):
    """The pull request is open and may still land: -wait ran out, or checks are pending and
    nothing waits for them (`merge`: timed-out, checks-pending)."""

    exit_code = EXIT_NOT_MERGED_YET


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cancelled pipeline, `timeout`, Kubernetes stopping the pod), raised like Ctrl-C so
    that every cleanup on the way out runs: index.lock released, moved refs and outputs put back."""


EXIT_TERMINATED = 143  # 128 + SIGTERM, what a shell reports for a process SIGTERM ended


def exit_code_for(error: BaseException) -> int:
    if isinstance(error, UpdaterError):
        return error.exit_code
    return EXIT_FAILURE
