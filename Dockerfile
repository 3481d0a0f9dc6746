# update-gitops-repo: render *.tmpl files in a GitOps repository, commit, push, open a pull request.
#
# The image is Debian bookworm's python3, git, ca-certificates and gnupg, minus everything the tool
# never runs (perl, apt, the git servers, login tools: see the rootfs stage), squashed into one layer,
# plus a virtualenv with the dependencies (one layer) and the tool (one small layer). About 144 MB
# instead of 263 MB; docs/image.md has the figures per layer and how to measure them.
#
# Every stage starts from the same BASE, so the virtualenv finds its interpreter at /usr/bin/python3
# in the final image. CI without Docker Hub builds with --build-arg BASE=localhost/update-gitops-repo-base:...
# (a debootstrap'd bookworm that already has the packages, see scripts/build-image.sh): same packages,
# same pruning, same result.
ARG BASE=debian:bookworm-slim

# -- os: the Debian packages the tool needs. Versions follow the Debian release (security updates). ----
FROM ${BASE} AS os
SHELL ["/bin/sh", "-eu", "-c"]
# apt runs only for what the base lacks: the CI base has everything and may be built offline.
# hadolint ignore=DL3008,SC2016,SC2086
RUN missing=; \
    for p in python3 python3-venv git ca-certificates gnupg; do \
        case "$(dpkg-query -W -f '${Status}' "$p" 2> /dev/null)" in *' installed') ;; *) missing="$missing $p" ;; esac; \
    done; \
    if [ -n "$missing" ]; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends $missing; \
        rm -rf /var/lib/apt/lists/*; \
    fi

# -- rootfs: that system, pruned, becomes the final image's first layer (COPY --from=rootfs / /). --------
FROM os AS rootfs
# A non-root user with group 0: on OpenShift the uid is arbitrary but the group is always 0, so every
# directory the tool may write is group-owned by 0 and group-writable. HOME is /tmp (see the ENV below).
# The entrypoint path appears in every generated file's header, so it must be exactly this one.
#
# Removed, with dpkg (so /var/lib/dpkg/status, which image scanners read, stays true):
#   perl (~47 MB): git needs it only for send-email, svn, cvs and other commands the tool never runs;
#   apt and its libraries, the keyring: nothing installs packages in the final image;
#   the pip/setuptools wheels and venv/distutils/lib2to3: the virtualenv is built in another stage;
#   gnupg's extras (dirmngr, gpgsm, wks, utils): gpg and gpg-agent are what signs commits;
#   login/passwd/PAM/SELinux tools, util-linux, e2fsprogs, perl-base, debconf: not used at run time.
# Removed as files: git's server and e-mail programs (git-daemon, http-backend, shell, imap-send,
# http-push/fetch, scalar: 2 MB each; git-remote-http stays), the git-core copy of the git binary
# (a symlink to /usr/bin/git instead), and the stdlib parts no code imports (test, idle, tkinter,
# turtle, pydoc's data, ensurepip, lib2to3, distutils). The C library, its charset converters,
# tzdata, coreutils, bash and the libraries python's own modules link stay.
RUN useradd --no-log-init --uid 65532 --gid 0 --home-dir /tmp --no-create-home --shell /bin/false nonroot \
    && mkdir -p /workspace \
    && chown 65532:0 /workspace \
    && chmod 0775 /workspace \
    && ln -s /opt/update-gitops-repo/bin/update-gitops-repo /usr/bin/update-gitops-repo \
    && dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' \
        perl perl-modules-5.36 libperl5.36 liberror-perl libgdbm-compat4 libgdbm6 git-man \
        apt libapt-pkg6.0 debian-archive-keyring libstdc++6 libsystemd0 libxxhash0 liblz4-1 \
        libseccomp2 libudev1 gpgv \
        python3-venv python3.11-venv python3-pip-whl python3-setuptools-whl python3-distutils \
        python3-lib2to3 \
        gnupg gnupg-utils gnupg-l10n dirmngr gpgsm gpg-wks-client gpg-wks-server \
        e2fsprogs libext2fs2 libss2 logsave \
        login passwd libpam-modules libpam-modules-bin libpam-runtime libpam0g libsemanage2 \
        libsemanage-common libsepol2 libaudit1 libaudit-common libcap-ng0 \
        util-linux util-linux-extra mount libmount1 libblkid1 libsmartcols1 libfdisk1 bsdutils \
        adduser debconf init-system-helpers sysvinit-utils perl-base \
        > /tmp/status 2> /dev/null || true \
    && sed -n 's/^ii  *//p' /tmp/status > /tmp/purge \
    && xargs dpkg --purge --force-depends --force-remove-essential --force-remove-protected \
        < /tmp/purge > /dev/null \
    && for f in git-daemon git-http-backend git-http-fetch git-http-push git-imap-send git-shell scalar \
        git-sh-i18n--envsubst; do rm -f "/usr/lib/git-core/$f" "/usr/bin/$f"; done \
    && ln -sf ../../bin/git /usr/lib/git-core/git \
    && rm -rf /usr/share/perl5 /usr/share/gitweb /usr/share/git-core/templates/hooks/*.sample \
    && stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])') \
    && for f in test idlelib tkinter turtledemo turtle.py pydoc_data ensurepip lib2to3 distutils; do \
        rm -rf "${stdlib:?}/$f"; done \
    && rm -f "$stdlib"/__pycache__/turtle.* \
    && rm -rf /var/cache/debconf /var/log/* /var/cache/apt /var/lib/apt /tmp/* /root/.cache

# -- deps: the virtualenv with the dependencies, on its own layer (it changes only with pyproject.toml).
FROM os AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml ./
# pip lives in its own throwaway venv (/tmp/pip) and installs into the image's venv with --python, so the
# image's venv never holds pip or setuptools. Dropped after the install:
#   pycparser: cffi needs it only to compile bindings, never to load PyNaCl's compiled ones.
# (cryptography, 15 MB, stays: GitHub App authentication signs its RS256 JWT with it.)
# Also dropped: test suites and type stubs shipped inside packages.
RUN python3 -m venv /tmp/pip \
    && python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
print("\n".join(p["project"]["dependencies"]))' > /tmp/requirements.txt \
    && python3 -m venv --without-pip /opt/update-gitops-repo \
    && /tmp/pip/bin/pip --python /opt/update-gitops-repo/bin/python install --quiet \
        --requirement /tmp/requirements.txt \
    && /tmp/pip/bin/pip --python /opt/update-gitops-repo/bin/python uninstall --quiet --yes pycparser \
    && site=$(/opt/update-gitops-repo/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
    && find "$site" -depth -type d \( -name tests -o -name test \) -exec rm -rf {} + \
    && find "$site" -name '*.pyi' -delete

# -- build: the tool itself, staged under /stage with the same paths it has in the final image. -------
FROM deps AS build
COPY . .
RUN /tmp/pip/bin/pip install --quiet 'setuptools>=68' \
    && /tmp/pip/bin/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir /tmp/wheel . \
    && /tmp/pip/bin/pip --python /opt/update-gitops-repo/bin/python install --quiet --no-deps \
        --no-warn-script-location --root /stage /tmp/wheel/*.whl \
    && /opt/update-gitops-repo/bin/python -m compileall -q -f -s /stage -p / /stage/opt/update-gitops-repo/lib

# -- the image: three layers (system, dependencies, tool) and nothing else. -------------------------
FROM scratch
# hadolint ignore=DL3067
COPY --from=rootfs / /
COPY --from=deps /opt/update-gitops-repo /opt/update-gitops-repo
COPY --from=build /stage/ /

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="update-gitops-repo" \
      org.opencontainers.image.description="Render *.tmpl files in a GitOps repository, commit, push and open a pull request (GitHub, GitLab, Bitbucket)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# HOME is /tmp because git wants a HOME for its config and, with a read-only root filesystem, /tmp is
# the one writable place. REQUESTS_CA_BUNDLE: the API client trusts the same store as git (certifi
# would ignore CAs added to the system store), so one CA bundle serves both.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    GIT_TERMINAL_PROMPT=0

USER 65532:0
WORKDIR /workspace
ENTRYPOINT ["/usr/bin/update-gitops-repo"]
