"""One redaction layer for everything the tool prints: logs, errors, git's own messages.

Secrets are registered once, as soon as they are read, in every spelling that could leak
(raw, URL-encoded, inside a base64 Basic header); `redact` replaces all of them.
"""

from __future__ import annotations

import re

_MASK = "***"
_secrets: set[str] = set()
# user:password@ in any URL, whatever its source (an origin URL we never parsed, an SDK message).
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]*:[^/@\s]*@")
_AUTH_HEADER = re.compile(
    r"(?i)(authorization:\s*(?:basic|bearer|token)\s+|private-token:\s*|job-token:\s*)[^\s'\"]+"
)


def register(secret: str | None, username: str | None = None) -> None:
    """Remember a secret so that every later `redact` hides it."""
    if not secret or len(secret) < 4:
        # Too short to hide without mangling ordinary text; such a value is not a real token.
        return
    # Imported here: -help and -compile-only log through this module but never register a secret.
    import binascii
    import urllib.parse

    _secrets.add(secret)
    _secrets.add(urllib.parse.quote(secret, safe=""))
    _secrets.add(urllib.parse.quote(secret))
    for user in {username or "", "x-access-token", "oauth2", "gitlab-ci-token", "x-token-auth"}:
        _secrets.add(binascii.b2a_base64(f"{user}:{secret}".encode(), newline=False).decode())


def redact(text: str) -> str:
    if not text:
        return text
    text = _URL_USERINFO.sub(lambda m: m.group("scheme") + _MASK + "@", text)
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + _MASK, text)
    # Longest first, so that a secret containing another is masked whole.
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, _MASK)
    return text


def forget_all() -> None:
    """For tests that run several scenarios in one process."""
    _secrets.clear()
