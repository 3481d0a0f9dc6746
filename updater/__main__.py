import sys

from updater.cli import main

sys.exit(main(["update-gitops-repo", *sys.argv[1:]]))
