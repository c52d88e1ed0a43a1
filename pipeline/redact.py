"""Keep secrets out of everything written: API keys and credentials inside endpoint URLs.

A leaf helper (no pipeline imports): the LLM backends redact what they cache, warn and raise,
and the run writes `redact_url(base_url)` into manifest.json.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# query parameters that carry credentials (Azure's api-key, signed URLs, tokens)
SECRET_PARAMETERS = frozenset({"api-key", "api_key", "apikey", "key", "token", "access_token", "sig", "signature",
                               "code", "secret", "password"})
MIN_SECRET = 4  # shorter strings would mask ordinary text


def redact_url(url: str | None) -> str | None:
    """`url` with its userinfo password and credential query parameters masked."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k.lower() in SECRET_PARAMETERS else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str | None) -> list[str]:
    """The secret pieces of a URL (password, credential parameters), to mask wherever they appear."""
    if not url:
        return []
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    if parts.username and parts.password is None and "@" in parts.netloc:
        found.append(parts.username)  # a token given as the whole userinfo
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() in SECRET_PARAMETERS]
    return [s for s in found if s]


def redact_text(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret (longest first) replaced by the mask."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
