#!/usr/bin/env python3
"""Serve bare git repositories over smart HTTP on 127.0.0.1 with token auth, for trying the tool by hand.

The same server the tests use (tests/gitserver.py). The accepted token comes from $SERVE_GIT_TOKEN (default:
the tests' DEFAULT_TOKEN), never from the command line. Examples:

    scripts/serve-git.py --fixture hello-world:your-github-user/cicd-hello-world-gitops.git
    scripts/serve-git.py --fixture multi-cluster:group/sub/deploy.git --protect group/sub/deploy.git:main
    scripts/serve-git.py --fixture helm-chart:scm/PROJ/charts.git --user alice --port 8929

Clone with the token kept off argv and out of .git/config:

    export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader
    export GIT_CONFIG_VALUE_0="Authorization: Basic $(printf 'u:%s' "$SERVE_GIT_TOKEN" | base64 -w0)"
    git clone URL
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.gitserver import DEFAULT_TOKEN, FIXTURES, GitServer


def _fixture_names() -> list[str]:
    return sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fixture",
        action="append",
        default=[],
        metavar="NAME[:REPO]",
        help=f"seed a repo from fixtures/NAME ({', '.join(_fixture_names())}); REPO: owner/NAME.git",
    )
    parser.add_argument(
        "--repo", action="append", default=[], metavar="REPO", help="an almost empty repo (a README)"
    )
    parser.add_argument("--default-branch", default="main")
    parser.add_argument("--user", help="accept the token only with this username (default: any username)")
    parser.add_argument(
        "--anonymous-read", action="store_true", help="clones and fetches need no credentials"
    )
    parser.add_argument(
        "--protect", action="append", default=[], metavar="REPO:BRANCH", help="refuse pushes to it"
    )
    parser.add_argument(
        "--root", type=Path, help="keep the repositories here (default: a temporary directory)"
    )
    parser.add_argument("--port", type=int, default=0, help="default: any free port")
    args = parser.parse_args(argv)

    token = os.environ.get("SERVE_GIT_TOKEN") or DEFAULT_TOKEN
    credentials = [(args.user, token)] if args.user else []
    server = GitServer(
        args.root,
        credentials=credentials,
        any_user_tokens=[] if args.user else [token],
        anonymous_read=args.anonymous_read,
        port=args.port,
    )
    with server:
        print(f"serving {server.url} (repositories under {server.root})", flush=True)
        for spec in args.fixture:
            name, _, repo = spec.partition(":")
            url = server.create_repo(repo or f"owner/{name}.git", FIXTURES / name, args.default_branch)
            print(f"  {url}  <- fixtures/{name}", flush=True)
        for repo in args.repo:
            print(f"  {server.create_repo(repo, default_branch=args.default_branch)}", flush=True)
        for spec in args.protect:
            repo, _, branch = spec.rpartition(":")
            server.protect_branch(repo, branch)
            print(f"  protected: {repo} {branch}", flush=True)
        who = f"user {args.user!r}" if args.user else "any username"
        source = "$SERVE_GIT_TOKEN" if os.environ.get("SERVE_GIT_TOKEN") else "the tests' DEFAULT_TOKEN"
        print(f"accepting {who} with {source}; Ctrl-C to stop", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
