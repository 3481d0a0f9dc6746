"""The main job end to end on the bundled example, with nothing to configure and no network.

A real git server (git http-backend behind token auth) on 127.0.0.1 holds the Dispatch hello-world
GitOps repository (fixtures/hello-world); a fake GitHub API on 127.0.0.1 receives the pull request.
The tool then runs exactly as a Tekton step would: in a detached, shallow checkout, with the token
in ~/.git-credentials. Everything lives in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.github import FakeGitHub  # noqa: E402
from tests.gitserver import GitServer, clone, copy_fixture, make_home  # noqa: E402

TOKEN = "demo-token-5f2a9c"
REPO = "acme/hello-world-gitops"
TOOL = str(Path(sys.executable).parent / "update-gitops-repo")


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="update-gitops-repo-demo.") as tmp_dir:
        tmp = Path(tmp_dir)
        with GitServer(tmp / "server", any_user_tokens=(TOKEN,)) as server, FakeGitHub() as github:
            url = server.create_repo(f"{REPO}.git", copy_fixture("hello-world", tmp / "seed"))
            github.add_token(TOKEN)
            github.add_repo(REPO, git_dir=server.repo_dir(f"{REPO}.git"))
            env = make_home(tmp, url, "tekton-bot", TOKEN, style="tekton")
            checkout = clone(url, tmp / "workspace" / "gitops-git", detached=True, env=env)
            step(f"GitOps repository {url} checked out like Tekton does (detached HEAD, depth 1)")
            print(f"working dir: {checkout}")

            argv = [
                TOOL,
                "-git-revision=203a37dbe6d5d3c5b13fae7296abc5448a89817a",
                "-substitute=imageName=your-dockerhub-user/hello-world@sha256:"
                "e34351c0bbe7658da1441a80398d230481b6465fb375739941f1a144e340c567",
                "-scm-provider=github",
                f"-api-endpoint={github.api_url}",
                "-labels=deploy",
            ]
            step("update-gitops-repo " + " ".join(argv[1:]))
            done = subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True, check=False)
            print(done.stderr, end="")
            print(f"stdout: {done.stdout.strip()}   (exit status {done.returncode})")
            if done.returncode != 0:
                return done.returncode

            branch = "update-to-commit-203a37dbe6d5d3c5b13fae7296abc5448a89817a"
            step(f"what origin now has on {branch}")
            print(server.git(f"{REPO}.git", "log", "-2", "--format=%h %an <%ae> %s", branch))
            pushed = server.read(f"{REPO}.git", "application.yaml", branch).decode()
            print("application.yaml:")
            print("".join(f"  {line}\n" for line in pushed.splitlines()[:3]))
            print("  ...\n" + "".join(f"  {ln.strip()}\n" for ln in pushed.splitlines() if "image:" in ln))

            [pull] = github.pulls(REPO)
            step(f"pull request #{pull.number} on the (fake) GitHub: {pull.head} -> {pull.base}")
            print(f"title:  {pull.title}\nlabels: {', '.join(pull.labels)}\nbody:")
            print("".join(f"  {line}\n" for line in (pull.body or "").splitlines()))

            step("the same step again (a pipeline re-run): converges, opens nothing new")
            again = clone(url, tmp / "rerun", detached=True, env=env)
            done = subprocess.run(argv, cwd=again, env=env, capture_output=True, text=True, check=False)
            print(done.stderr, end="")
            print(
                f"stdout: {done.stdout.strip()}   (exit status {done.returncode}); "
                f"pull requests on GitHub: {len(github.pulls(REPO))}"
            )
            return done.returncode


if __name__ == "__main__":
    sys.exit(main())
