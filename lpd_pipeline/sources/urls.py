"""URLs as they may be reported: one helper, used wherever a URL reaches a log, a table or a page.

Rule of :func:`redact_url`: the user-info part (``user:password@``) is replaced by ``***@``; in the query and
the fragment, the value of every parameter whose name says it is a secret (token, signature, key, password,
credential, session, auth...: AWS/GCS/Azure pre-signed URLs included) is replaced by ``REDACTED``, and so is any
value that looks like a secret whatever its name (24 or more characters of letters, digits and ``-_.~+/=%`` with
both letters and digits: bearer tokens, JWTs, hex digests), and any bare part without a name (``?abc123``),
which cannot be told apart from a token. Names, ordinary values (ids, sizes, page numbers), host and path are
kept, so a reader still knows which resource failed. A URL that cannot be parsed keeps only what comes before
its user-info and query. The result is at most ``MAX_REPORTED_CHARS`` long.
"""

from __future__ import annotations

import re
import urllib.parse

REDACTED = "REDACTED"
MAX_REPORTED_CHARS = 300
# Parameter names (lower case, any of these as a word-part) whose values are secrets.
_SECRET_NAME = re.compile(
    r"(^|[-_.])(x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential"
    r"|sig|signature|token|access[-_]?token|id[-_]?token|refresh[-_]?token|auth|authorization|key|api[-_]?key"
    r"|apikey|secret|client[-_]?secret|password|passwd|pwd|pass|credential|credentials|session|sessionid|sid"
    r"|policy|key-pair-id|code|jwt|hmac|otp)($|[-_.])",
    re.IGNORECASE,
)
_SECRET_LOOKING = re.compile(r"^[A-Za-z0-9\-_.~+/=%]{24,}$")


def _secret_value(value: str) -> bool:
    return bool(_SECRET_LOOKING.match(value)) and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def _redact_params(text: str) -> str:
    if not text:
        return text
    parts = []
    for part in text.split("&"):
        name, equals, value = part.partition("=")
        if not equals:
            parts.append(REDACTED if part else part)  # a bare value: cannot tell it from a token
            continue
        plain_name = urllib.parse.unquote_plus(name)
        if _SECRET_NAME.search(plain_name) or _secret_value(value):
            value = REDACTED
        parts.append(f"{name}={value}")
    return "&".join(parts)


def redact_url(url: str) -> str:
    """``url`` with credentials and secret-looking query values replaced (see the module docstring)."""
    text = str(url)
    try:
        parts = urllib.parse.urlsplit(text)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[1]
        redacted = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, _redact_params(parts.query),
                                            _redact_params(parts.fragment)))
    except ValueError:
        # Unparseable (a broken IPv6 literal, say): keep the scheme and what follows any user-info, up to the
        # first '?' or '#'.
        head = re.split(r"[?#]", text, maxsplit=1)[0]
        head = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*:)?//[^/]*@", lambda m: f"{m.group(1) or ''}//***@", head)
        redacted = head + (f"?{REDACTED}" if len(head) < len(text) else "")
    if len(redacted) > MAX_REPORTED_CHARS:
        redacted = redacted[:MAX_REPORTED_CHARS - 3] + "..."
    return redacted


_URL_IN_TEXT = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>]+""")


def redact_urls_in(text: str) -> str:
    """``text`` (an error message, say) with every URL in it redacted as :func:`redact_url` does."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), str(text))
