"""update-gitops-repo: render GitOps templates, commit, push and open a pull request.

Kept empty on purpose: `update-gitops-repo -help` must not pay for imports it does not use.
"""

__version__ = "0.1.0"
