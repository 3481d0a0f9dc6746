"""Finding the templates: every `*.tmpl` under the working dir, or those a -filepath glob selects.

The glob is matched against slash-separated paths relative to the working dir: `*` and `?` never
cross `/`, `**` does (`staging/**.yaml.tmpl` reaches any depth, `a/**/b` includes `a/b`). `.git` is
never searched. The same matcher serves a directory walk and a list of paths from a git tree, so
a re-render on another commit selects exactly what the first render did.
"""

from __future__ import annotations

import os
import re

from updater.errors import TemplateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

SUFFIX = ".tmpl"


class Selector:
    __slots__ = ("_regex", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern  # "" selects every *.tmpl
        self._regex = re.compile(glob_to_regex(pattern)) if pattern else None

    def __repr__(self) -> str:
        return f"Selector({self.pattern!r})"

    @property
    def root(self) -> str:
        """The literal directory prefix of the pattern: the walk starts there, not at the top."""
        if not self.pattern:
            return ""
        literal = []
        for part in self.pattern.split("/")[:-1]:
            if any(c in part for c in "*?["):
                break
            literal.append(part)
        return "/".join(literal)

    def matches(self, relpath: str) -> bool:
        if not relpath.endswith(SUFFIX):
            return False
        return self._regex is None or self._regex.fullmatch(relpath) is not None


def glob_to_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "^") else i + 1)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1 : end]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
                i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def check_pattern(pattern: str) -> str:
    """Refuse a -filepath that could reach outside the working dir; normalise ./ prefixes."""
    if not pattern:
        return ""
    if pattern.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", pattern):
        raise TemplateError(f"-filepath={pattern} is absolute: give a glob relative to the working directory")
    parts = [p for p in pattern.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise TemplateError(f"-filepath={pattern} leaves the working directory ('..' is not allowed)")
    try:
        glob_to_regex("/".join(parts))
        re.compile(glob_to_regex("/".join(parts)))
    except re.error as exc:
        raise TemplateError(f"-filepath={pattern} is not a valid glob: {exc}") from None
    return "/".join(parts)


def find_in_directory(workdir: str, selector: Selector, boundary: str | None = None) -> list[str]:
    """Template paths (relative to workdir, '/'-separated, sorted) found by one walk.

    Symlinked directories are not followed. With `boundary` (the repository top), one that leads
    outside it is refused: templates behind it would be read from, and outputs written to, outside.
    """
    found: list[str] = []
    start = os.path.join(workdir, selector.root) if selector.root else workdir
    if not os.path.isdir(start):
        return found
    prefix_len = len(workdir.rstrip(os.sep)) + 1
    top = os.path.realpath(boundary) if boundary is not None else None

    def refuse_if_outside(path: str, rel: str) -> None:
        real = os.path.realpath(path)
        if top is not None and real != top and not real.startswith(top.rstrip(os.sep) + os.sep):
            raise TemplateError(
                f"{rel}: a symlinked directory that leads outside the repository ({real}); remove the link "
                "or narrow -filepath to directories without it"
            )

    if selector.root:
        refuse_if_outside(start, selector.root)
    for dirpath, dirnames, filenames in os.walk(start):
        # Never descend into git's own directory; symlinked directories are not followed (os.walk default).
        dirnames[:] = [d for d in dirnames if d != ".git"]
        rel_dir = dirpath[prefix_len:].replace(os.sep, "/") if len(dirpath) >= prefix_len else ""
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                refuse_if_outside(os.path.join(dirpath, name), f"{rel_dir}/{name}" if rel_dir else name)
        for name in filenames:
            if name.endswith(SUFFIX):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if selector.matches(rel):
                    found.append(rel)
    found.sort()
    return found


def select(paths: Iterable[str], selector: Selector) -> list[str]:
    """The same selection over a list of relative paths (e.g. from `git ls-tree`)."""
    return sorted(p for p in paths if not p.startswith(".git/") and "/.git/" not in p and selector.matches(p))


def output_path(template: str) -> str:
    return template[: -len(SUFFIX)]
