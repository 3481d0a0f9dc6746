# update-gitops-repo: render *.tmpl files in a GitOps repository, commit, push, open a pull request.
#
# Both stages use the same BASE so the virtualenv built in the first one finds its interpreter at the
# same path in the second (/usr/local/bin/python3 in the public python image, /usr/bin/python3 in a
# plain Debian base). CI without Docker Hub builds with --build-arg BASE=localhost/update-gitops-repo-base
# (see scripts/build-image.sh).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
RUN python3 -m venv /opt/update-gitops-repo

# Dependencies (and the build backend) first, in their own layer, so that a source change does not
# download them again.
COPY pyproject.toml ./
RUN python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
print("\n".join(p["project"]["dependencies"] + p["build-system"]["requires"]))' > /tmp/requirements.txt \
    && /opt/update-gitops-repo/bin/pip install --requirement /tmp/requirements.txt

COPY . .
# pip and setuptools are only needed to install: leaving them out of the venv saves ~15 MB.
RUN /opt/update-gitops-repo/bin/pip install --no-deps --no-build-isolation . \
    && /opt/update-gitops-repo/bin/pip uninstall --yes pip setuptools


FROM ${BASE}

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="update-gitops-repo" \
      org.opencontainers.image.description="Render *.tmpl files in a GitOps repository, commit, push and open a pull request (GitHub, GitLab, Bitbucket)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# git pushes, ca-certificates verifies TLS for git and the API, gnupg signs commits for repos with
# commit.gpgsign. The Debian base made by scripts/build-image.sh already has them (and may be built
# offline), so apt only runs when one is missing. Versions follow the Debian release (security updates).
SHELL ["/bin/sh", "-eu", "-c"]
# hadolint ignore=DL3008
RUN if ! command -v git > /dev/null || ! command -v gpg > /dev/null \
        || [ ! -e /etc/ssl/certs/ca-certificates.crt ]; then \
        apt-get update; \
        apt-get install --yes --no-install-recommends git ca-certificates gnupg; \
        rm -rf /var/lib/apt/lists/*; \
    fi

COPY --from=build /opt/update-gitops-repo /opt/update-gitops-repo

# The entrypoint path appears in every generated file's header, so it must be exactly this one.
# A non-root user with group 0: on OpenShift the uid is arbitrary but the group is always 0, so every
# directory the tool may write is group-owned by 0 and group-writable. HOME is /tmp because git wants
# a HOME for its config and, with a read-only root filesystem, /tmp is the one writable place.
RUN ln -s /opt/update-gitops-repo/bin/update-gitops-repo /usr/bin/update-gitops-repo \
    && useradd --no-log-init --uid 65532 --gid 0 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin nonroot \
    && mkdir -p /workspace \
    && chown 65532:0 /workspace \
    && chmod 0775 /workspace

# REQUESTS_CA_BUNDLE: the API client trusts the same store as git (certifi would ignore CAs added
# to the system store), so one CA bundle serves both.
ENV HOME=/tmp \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    GIT_TERMINAL_PROMPT=0

USER 65532:0
WORKDIR /workspace
ENTRYPOINT ["/usr/bin/update-gitops-repo"]
