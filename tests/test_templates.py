"""Template discovery and -filepath globs (spec §3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from updater.errors import TemplateError
from updater.templates import Selector, check_pattern, find_in_directory, select

TREE = [
    "app.yaml.tmpl",
    "README.md",
    "staging/deployment.yaml.tmpl",
    "staging/deep/er/values.yaml.tmpl",
    "staging/notes.txt",
    "production/us-east-1/deployment.yaml.tmpl",
    "production/us-west-1/values.yaml.tmpl",
    "production/us-west-1/nested/x.json.tmpl",
    ".git/hooks/evil.tmpl",
    "sub/.git/inner.tmpl",
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for rel in TREE:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    return tmp_path


def test_default_is_every_tmpl_under_the_working_dir_except_git(tree: Path) -> None:
    assert find_in_directory(str(tree), Selector("")) == [
        "app.yaml.tmpl",
        "production/us-east-1/deployment.yaml.tmpl",
        "production/us-west-1/nested/x.json.tmpl",
        "production/us-west-1/values.yaml.tmpl",
        "staging/deep/er/values.yaml.tmpl",
        "staging/deployment.yaml.tmpl",
    ]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("staging/**.yaml.tmpl", ["staging/deep/er/values.yaml.tmpl", "staging/deployment.yaml.tmpl"]),
        ("staging/*.yaml.tmpl", ["staging/deployment.yaml.tmpl"]),
        ("production/*/values.yaml.tmpl", ["production/us-west-1/values.yaml.tmpl"]),
        (
            "production/**/*.tmpl",
            [
                "production/us-east-1/deployment.yaml.tmpl",
                "production/us-west-1/nested/x.json.tmpl",
                "production/us-west-1/values.yaml.tmpl",
            ],
        ),
        (
            "**/values.yaml.tmpl",
            ["production/us-west-1/values.yaml.tmpl", "staging/deep/er/values.yaml.tmpl"],
        ),
        ("*.tmpl", ["app.yaml.tmpl"]),
        ("production/us-?ast-1/*.tmpl", ["production/us-east-1/deployment.yaml.tmpl"]),
        ("production/us-[ew]*/deployment.yaml.tmpl", ["production/us-east-1/deployment.yaml.tmpl"]),
        ("./app.yaml.tmpl", ["app.yaml.tmpl"]),
        ("nothing/*.tmpl", []),
        ("staging/notes.txt", []),
    ],
)
def test_filepath_globs(tree: Path, pattern: str, expected: list[str]) -> None:
    assert find_in_directory(str(tree), Selector(check_pattern(pattern))) == expected


def test_the_same_selection_applies_to_paths_from_a_git_tree() -> None:
    assert select(TREE, Selector("staging/**.yaml.tmpl")) == find_paths("staging/**.yaml.tmpl")


def find_paths(pattern: str) -> list[str]:
    return sorted(
        p for p in TREE if Selector(pattern).matches(p) and not p.startswith(".git/") and "/.git/" not in p
    )


@pytest.mark.parametrize("pattern", ["../other/*.tmpl", "a/../../x.tmpl", "/etc/*.tmpl"])
def test_a_filepath_that_leaves_the_working_dir_is_refused(pattern: str) -> None:
    with pytest.raises(TemplateError):
        check_pattern(pattern)


def test_symlinked_directories_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.tmpl").write_text("x")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "link").symlink_to(outside)
    assert find_in_directory(str(repo), Selector("")) == []
