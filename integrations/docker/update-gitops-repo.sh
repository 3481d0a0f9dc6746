#!/bin/sh
# Run update-gitops-repo from its image against the GitOps checkout in the current directory:
#
#   cd ~/src/gitops && GITHUB_TOKEN=... path/to/update-gitops-repo.sh -git-revision=1b39bd0 \
#       -substitute=imageName=registry.example.com/app@sha256:...
#
# The container runs as your uid (files it writes stay yours), with a read-only root filesystem and a
# fresh /tmp (git and the tool write nothing else); tokens are passed by name from your
# environment (`-e NAME`), so they never appear on a command line. DOCKER=podman works too.
set -eu
image=${UPDATE_GITOPS_REPO_IMAGE:-ghcr.io/update-gitops-repo/update-gitops-repo:0.1.0}
set -- --rm --read-only --tmpfs /tmp --user "$(id -u):$(id -g)" -v "$PWD:/workspace" -w /workspace \
    "$image" "$@"
for name in UPDATE_GITOPS_REPO_TOKEN UPDATE_GITOPS_REPO_USERNAME GITHUB_TOKEN GH_TOKEN GITLAB_TOKEN \
    BITBUCKET_USERNAME BITBUCKET_APP_PASSWORD BITBUCKET_ACCESS_TOKEN BITBUCKET_TOKEN BITBUCKET_SERVER_TOKEN; do
    if eval "[ -n \"\${$name:-}\" ]"; then set -- -e "$name" "$@"; fi
done
exec "${DOCKER:-docker}" run "$@"
