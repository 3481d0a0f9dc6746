#!/bin/sh
# Run update-gitops-repo from its image against the GitOps checkout you are in:
#
#   cd ~/src/gitops/apps/web && GITHUB_TOKEN=... path/to/update-gitops-repo.sh -git-revision=1b39bd0 \
#       -substitute=imageName=registry.example.com/app@sha256:...
#
# - The top of the repository (the current directory outside one) is mounted at /workspace, and the
#   container starts in the matching sub-directory: templates are found where they are found here.
# - The container runs as your uid and gid (files it writes stay yours), with a read-only root
#   filesystem and a fresh /tmp (git and the tool write nothing else).
# - Variables go by name (`-e NAME`), so their values never appear on a command line. Forwarded when set:
#   the credentials the tool reads (UPDATE_GITOPS_REPO_*, GITHUB_TOKEN, GH_TOKEN, GH_ENTERPRISE_TOKEN,
#   GITLAB_TOKEN, GL_TOKEN, GITLAB_OAUTH_TOKEN, CI_JOB_TOKEN, BITBUCKET_*, a GitHub App's GITHUB_APP_ID,
#   GITHUB_APP_CLIENT_ID, GITHUB_APP_PRIVATE_KEY and GITHUB_APP_INSTALLATION_ID), where the API is
#   (GITHUB_SERVER_URL, GITHUB_API_URL, CI_SERVER_HOST, CI_API_V4_URL, CI_PROJECT_PATH, CI_DEFAULT_BRANCH),
#   proxies (https_proxy, http_proxy, all_proxy, no_proxy, either case), git's identity (GIT_AUTHOR_*,
#   GIT_COMMITTER_*) and TZ.
# - Files the container could not see are bind-mounted read-only under /run/update-gitops-repo and
#   handed to the tool at their new path: those named by -token-file, -api-token-file and -ca-bundle (as
#   -flag=PATH, --flag=PATH, -flag PATH or --flag PATH) when they are outside the repository or given as
#   an absolute path, and those named by SSL_CERT_FILE, SSL_CERT_DIR, GIT_SSL_CAINFO, GIT_SSL_CAPATH,
#   REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and GITHUB_APP_PRIVATE_KEY_FILE (the variable is set to the new
#   path). Their contents are
#   never read here.
#
# UPDATE_GITOPS_REPO_IMAGE picks the image; DOCKER=podman works too.
set -euf

# shellcheck disable=SC2034 # used in the eval at the end
image=${UPDATE_GITOPS_REPO_IMAGE:-ghcr.io/update-gitops-repo/update-gitops-repo:0.1.0}
files=/run/update-gitops-repo
# The flags that take no separate value (updater/flags.py; tests/test_integrations.py keeps them in step):
# any other flag without "=VALUE" takes the next argument as its value.
bool_flags=" create-pull-request merge-pull-request force-push verbose compile-only git-ignore dry-run "
bool_flags="$bool_flags header draft version allow-insecure-http help h "

die() {
    echo "update-gitops-repo.sh: $*" >&2
    exit 2
}

# One word for `eval`, whatever the characters in it.
quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# docker run's options, quoted for eval (a POSIX shell has only one list, "$@": the tool's arguments).
opts=

mount_ro() { # HOST_PATH CONTAINER_PATH
    case $1 in *:*) die "cannot mount $1 into the container: the path contains ':'" ;; esac
    opts="$opts -v $(quote "$1:$2:ro")"
}

# PATH, absolute, with its directory's symlinks resolved; fails when the directory does not exist.
absolute() {
    case $1 in /*) _path=$1 ;; *) _path=$here/$1 ;; esac
    _dir=$(cd "$(dirname -- "$_path")" 2> /dev/null && pwd -P) || return 1
    _base=$(basename -- "$_path")
    case $_dir in /) printf '/%s\n' "$_base" ;; *) printf '%s/%s\n' "$_dir" "$_base" ;; esac
}

here=$(pwd -P)
top=$(git rev-parse --show-toplevel 2> /dev/null) || top=
if [ -n "$top" ]; then top=$(cd "$top" && pwd -P); else top=$here; fi # not in a repository: here
case $here in
    "$top"/*) workdir=/workspace/${here#"$top"/} ;;
    *) top=$here workdir=/workspace ;;
esac

# A file for the tool (-token-file, -api-token-file, -ca-bundle): sets $mapped to its path in the container.
count=0
map_file() { # PATH FLAG
    mapped=$1
    if [ -z "$1" ] || [ ! -e "$1" ]; then return 0; fi # the tool says what is wrong with it
    host=$(absolute "$1") || return 0
    case $host in
        "$top"/*)
            # In the repository: a relative path means the same in the container's working directory.
            case $1 in /*) mapped=/workspace/${host#"$top"/} ;; esac
            ;;
        *)
            count=$((count + 1))
            mapped=$files/$count-$2
            mount_ro "$host" "$mapped"
            ;;
    esac
}

# The tool's arguments, in Go flag syntax (updater/flags.py): each is taken from the front of "$@" and
# put back at its end, rewritten if it names a file.
n=$#
while [ "$n" -gt 0 ]; do
    arg=$1
    shift
    n=$((n - 1))
    case $arg in
        --)
            set -- "$@" "$arg" # the rest is not flags
            while [ "$n" -gt 0 ]; do
                set -- "$@" "$1"
                shift
                n=$((n - 1))
            done
            break
            ;;
        --?*) dashes=-- body=${arg#--} ;;
        -?*) dashes=- body=${arg#-} ;;
        *)
            set -- "$@" "$arg"
            continue
            ;;
    esac
    name=${body%%=*}
    case $body in *=*) inline=1 ;; *) inline=0 ;; esac
    case $name in
        token-file | api-token-file | ca-bundle)
            if [ "$inline" = 1 ]; then
                map_file "${body#*=}" "$name"
                set -- "$@" "$dashes$name=$mapped"
            elif [ "$n" -gt 0 ]; then
                map_file "$1" "$name"
                shift
                n=$((n - 1))
                set -- "$@" "$arg" "$mapped"
            else
                set -- "$@" "$arg"
            fi
            ;;
        *)
            set -- "$@" "$arg"
            case $bool_flags in
                *" $name "*) ;;
                *)
                    if [ "$inline" = 0 ] && [ "$n" -gt 0 ]; then # its value: passed as it is
                        set -- "$@" "$1"
                        shift
                        n=$((n - 1))
                    fi
                    ;;
            esac
            ;;
    esac
done

# The environment, by name. A CA variable or a GitHub App's key file names a file (or directory): mounted
# read-only, and set to where it is in the container.
while IFS= read -r name; do
    case $name in
        *[!A-Za-z0-9_]* | UPDATE_GITOPS_REPO_IMAGE | UPDATE_GITOPS_REPO_SAFE_DIRECTORY_SET) ;;
        UPDATE_GITOPS_REPO_* | GITHUB_TOKEN | GH_TOKEN | GH_ENTERPRISE_TOKEN | GITLAB_TOKEN | GL_TOKEN \
            | GITLAB_OAUTH_TOKEN | CI_JOB_TOKEN | BITBUCKET_* | GITHUB_APP_ID | GITHUB_APP_CLIENT_ID \
            | GITHUB_APP_PRIVATE_KEY | GITHUB_APP_INSTALLATION_ID | GITHUB_SERVER_URL | GITHUB_API_URL \
            | CI_SERVER_HOST | CI_API_V4_URL | CI_PROJECT_PATH | CI_DEFAULT_BRANCH | https_proxy \
            | HTTPS_PROXY | http_proxy | HTTP_PROXY | all_proxy | ALL_PROXY | no_proxy | NO_PROXY \
            | GIT_AUTHOR_NAME | GIT_AUTHOR_EMAIL | GIT_AUTHOR_DATE | GIT_COMMITTER_NAME \
            | GIT_COMMITTER_EMAIL | GIT_COMMITTER_DATE | TZ)
            opts="$opts -e $name"
            ;;
        SSL_CERT_FILE | SSL_CERT_DIR | GIT_SSL_CAINFO | GIT_SSL_CAPATH | REQUESTS_CA_BUNDLE | CURL_CA_BUNDLE \
            | GITHUB_APP_PRIVATE_KEY_FILE)
            eval "path=\${$name}"
            if [ -n "$path" ] && [ -e "$path" ] && host=$(absolute "$path"); then
                mount_ro "$host" "$files/env/$name"
                opts="$opts -e $name=$files/env/$name"
            else
                opts="$opts -e $name" # the tool says what is wrong with it
            fi
            ;;
    esac
done << EOF
$(awk 'BEGIN { for (name in ENVIRON) print name }' | LC_ALL=C sort)
EOF

case $top in *:*) die "cannot mount $top into the container: the path contains ':'" ;; esac
eval "set -- --rm --read-only --tmpfs /tmp --user $(id -u):$(id -g) -v $(quote "$top:/workspace") \
    -w $(quote "$workdir") $opts"' "$image" "$@"'
exec "${DOCKER:-docker}" run "$@"
