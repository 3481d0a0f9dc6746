"""Go flag syntax, as every existing Dispatchfile writes it."""

from __future__ import annotations

import pytest

from updater import flags
from updater.errors import UsageError


def test_every_go_spelling_of_a_value_is_accepted() -> None:
    opts = flags.parse(
        ["-git-revision=abc", "-branch", "b1", "--commit-message=msg", "--base-branch", "main", "-filepath="]
    )
    assert (opts.git_revision, opts.branch, opts.commit_message, opts.base_branch, opts.filepath) == (
        "abc",
        "b1",
        "msg",
        "main",
        "",
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-create-pull-request"], True),
        (["-create-pull-request=false"], False),
        (["--create-pull-request=0"], False),
        (["-create-pull-request=F"], False),
        (["-create-pull-request=TRUE"], True),
        ([], True),
    ],
)
def test_booleans_take_go_spellings_and_only_with_equals(args: list[str], expected: bool) -> None:
    assert flags.parse(args).create_pull_request is expected


def test_a_bare_boolean_does_not_swallow_the_next_argument() -> None:
    opts = flags.parse(["-verbose", "-git-revision=1"])
    assert opts.verbose and opts.git_revision == "1"


def test_substitute_splits_at_the_first_equals_and_keeps_the_rest() -> None:
    opts = flags.parse(
        ["-substitute=imageName=user/hello@sha256:abc=", "-substitute", "url=https://h:8080/a?b=c"]
    )
    assert opts.substitute == {"imageName": "user/hello@sha256:abc=", "url": "https://h:8080/a?b=c"}


def test_the_last_duplicate_substitution_wins_and_is_remembered_for_a_warning() -> None:
    opts = flags.parse(["-substitute=a=1", "-substitute=a=2"])
    assert opts.substitute == {"a": "2"}
    assert opts.duplicate_keys == ["a"]


def test_an_empty_substitution_value_is_allowed() -> None:
    assert flags.parse(["-substitute=a="]).substitute == {"a": ""}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-template-path=x"], "flag provided but not defined: -template-path"),
        (["--nope"], "flag provided but not defined: -nope"),
        (["-substitute=novalue"], 'invalid value "novalue" for -substitute: expected key=value'),
        (["-substitute==v"], "the key before"),
        (["-verbose=maybe"], 'invalid boolean value "maybe" for -verbose'),
        (["-branch"], "flag needs an argument: -branch"),
        (["-output=yaml"], 'invalid value "yaml" for -output'),
        (["-merge-method=octopus"], "-merge-method"),
        (["-push-attempts=0"], "at least 1"),
        (["-push-attempts=x"], "-push-attempts"),
        (["stray"], "unexpected argument 'stray'"),
        (["---x"], "bad flag syntax"),
        (["-=x"], "bad flag syntax"),
    ],
)
def test_bad_flags_are_usage_errors_that_name_the_problem(args: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        flags.parse(args)
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("spelling", ["-help", "--help", "-h", "-h=1"])
def test_help_is_requested_by_every_go_spelling(spelling: str) -> None:
    with pytest.raises(flags.HelpRequested):
        flags.parse([spelling])


def test_help_documents_every_flag() -> None:
    text = flags.usage()
    for name in flags.FLAGS:
        assert f"  -{name}" in text
    assert "Exit status" in text


def test_string_values_may_start_with_a_dash_when_separate() -> None:
    assert flags.parse(["-commit-message", "-x- marks"]).commit_message == "-x- marks"


def test_labels_and_reviewers_accept_commas_and_repeats() -> None:
    opts = flags.parse(["-labels=a, b", "-labels", "c", "-reviewers=alice"])
    assert opts.labels == ["a", "b", "c"] and opts.reviewers == ["alice"]


def test_default_branch_and_message_come_from_the_revision() -> None:
    opts = flags.parse(["-git-revision=1b39bd0"])
    assert opts.effective_branch == "update-to-commit-1b39bd0"
    assert opts.effective_commit_message() == "update templates for commit 1b39bd0\n"
    assert flags.parse(["-git-revision=1", "-branch="]).effective_branch == "update-to-commit-1"


def test_a_substitute_value_that_is_not_utf8_is_a_usage_error() -> None:
    import pytest

    from updater.errors import UsageError

    with pytest.raises(UsageError, match="-substitute tag: the value is not valid UTF-8"):
        flags.parse(["-substitute=tag=bad\udcffutf"])  # how Python hands over undecodable argv bytes


def test_refs_heads_alone_is_not_a_branch_name() -> None:
    assert flags.parse(["-git-revision=1", "-branch=refs/heads/"]).effective_branch == "refs/heads/"


def test_an_unknown_commit_cleanup_is_refused_as_git_refuses_it() -> None:
    import pytest

    from updater.errors import UsageError

    with pytest.raises(UsageError, match="Invalid cleanup mode bogus"):
        flags.parse(["-git-revision=1"]).effective_commit_message("bogus")
