"""One bounded, polite, resumable HTTP downloader shared by the network sources (standard library only).

Guarantees: only http/https; only global addresses, checked on the resolved address that is then connected
to, at every redirect hop (:mod:`lpd_pipeline.sources.addresses`); URLs reported redacted
(:func:`lpd_pipeline.sources.urls.redact_url`); per-URL deadline across retries; exponential backoff on 5xx,
429, timeouts and connection errors (never on other 4xx); a size cap checked against Content-Length and while
streaming; a Content-Type check *and* a magic-byte check of the first bytes (a rejected body is described by
its kind, never quoted); file names derived from the URL (hash + sanitized basename, never the server's name,
always inside ``dest_dir``); atomic writes; and resume: an index (``downloads.json``) maps URL -> file +
sha256, and files are named by the URL hash, so a re-run downloads nothing
it already has even when the index lost its last entries.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable

from lpd_pipeline.files import (
    atomic_path,
    read_json_object,
    remove_stale_temp_files,
    sha256_file,
    write_text_atomic,
)
from lpd_pipeline.imaging import describe_non_image, sniff_image_type
from lpd_pipeline.settings import PathEscapeError, safe_join
from lpd_pipeline.sources.addresses import CheckedHTTPHandler, CheckedHTTPSHandler, PrivateAddressError
from lpd_pipeline.sources.records import SourceFailure
from lpd_pipeline.sources.urls import redact_url, redact_urls_in

MiB = 1024 * 1024
INDEX_NAME = "downloads.json"
_CHUNK = 64 * 1024
_SNIFF_BYTES = 32
# Canonical file suffix per sniffed type, so local decoders pick the right codec.
_SUFFIX_FOR_TYPE = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif", "webp": ".webp", "bmp": ".bmp", "gif": ".gif"}
_STALE_TEMP_AGE_S = 3600.0


@dataclass(frozen=True)
class DownloadPolicy:
    """Limits and manners for every request. ``deadline_s`` bounds the total time spent on one URL."""

    timeout_s: float = 30.0
    max_bytes: int = 100 * MiB
    max_json_bytes: int = 16 * MiB
    retries: int = 3
    backoff_s: float = 1.0
    backoff_cap_s: float = 30.0
    deadline_s: float = 300.0
    min_interval_s: float = 1.0
    allowed_types: tuple[str, ...] = ("jpeg", "png", "tiff", "webp", "bmp")
    user_agent: str = "lpd-pipeline/0.1 (research dataset builder; python-urllib)"
    verify_cached_sha256: bool = False  # re-hash cached files on every run (slow for big collections)
    # Loopback, private, link-local, multicast and reserved addresses are refused unless this is set (tests,
    # an intranet mirror); see lpd_pipeline.sources.addresses.
    allow_private_networks: bool = False
    # HTTP(S)_PROXY from the environment: off by default, as the proxy's own DNS lookup escapes the check above.
    use_env_proxies: bool = False

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.deadline_s <= 0:
            raise ValueError("DownloadPolicy: timeout_s and deadline_s must be > 0")
        if self.max_bytes <= 0 or self.max_json_bytes <= 0:
            raise ValueError("DownloadPolicy: max_bytes and max_json_bytes must be > 0")
        if self.retries < 0 or self.backoff_s < 0 or self.min_interval_s < 0:
            raise ValueError("DownloadPolicy: retries, backoff_s and min_interval_s must be >= 0")
        unknown = set(self.allowed_types) - set(_SUFFIX_FOR_TYPE)
        if unknown:
            raise ValueError(f"DownloadPolicy: unknown image types {sorted(unknown)}")


@dataclass
class DownloadResult:
    url: str
    path: Path | None
    status: str  # "downloaded" | "cached" | "failed"
    reason: str = ""  # failure code, e.g. "http_404", "oversize", "wrong_type", "timeout"
    detail: str = ""
    bytes: int = 0
    sha256: str = ""
    image_type: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("downloaded", "cached")

    def to_failure(self, stage: str = "download") -> SourceFailure:
        return SourceFailure(item=redact_url(self.url), stage=stage, reason=self.reason, detail=self.detail)


class DownloadError(Exception):
    """A request that failed for good (after retries where retrying made sense)."""

    def __init__(self, url: str, reason: str, detail: str = "") -> None:
        super().__init__(f"{redact_url(url)}: {reason}" + (f" ({detail})" if detail else ""))
        self.url = url
        self.reason = reason
        self.detail = detail


class _Permanent(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason, self.detail = reason, detail


class _Transient(_Permanent):
    def __init__(self, reason: str, detail: str = "", retry_after_s: float | None = None) -> None:
        super().__init__(reason, detail)
        self.retry_after_s = retry_after_s


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http/https (urllib would also follow to ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401 - urllib hook
        scheme = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl)).scheme.lower()
        if scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"redirect to {scheme!r} refused", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def check_http_url(url: str) -> str | None:
    """Return why ``url`` is not a fetchable http(s) URL, or None when it is."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        return f"unparseable URL: {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"scheme {parts.scheme or '(none)'!r} is not http/https"
    if not parts.hostname:
        return "URL has no host"
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return "URL contains whitespace or control characters"
    if parts.username is not None or parts.password is not None:
        return "URL carries credentials (user:password@host); refused so they never reach logs or tables"
    try:
        parts.port  # noqa: B018 - raises for a non-numeric or out-of-range port
    except ValueError as exc:
        return f"invalid port: {exc}"
    return None


def _ascii_url(url: str) -> str:
    """The URL as a request line can carry it: IDNA host, percent-encoded non-ASCII path/query (painting file
    names are often Chinese). Already-encoded sequences are kept; an ASCII URL is returned as it is."""
    if url.isascii():
        return url
    parts = urllib.parse.urlsplit(url)
    try:
        host = parts.hostname.encode("idna").decode("ascii") if parts.hostname else ""
    except UnicodeError as exc:
        raise _Permanent("bad_url", f"host {parts.hostname!r} cannot be IDNA-encoded: {exc}") from None
    if parts.netloc.isascii():
        netloc = parts.netloc  # as given (keeps an IPv6 literal's brackets)
    else:
        netloc = f"{host}:{parts.port}" if parts.port is not None else host
    keep = "/%:@!$&'()*+,;=-._~?"
    return urllib.parse.urlunsplit((parts.scheme, netloc, urllib.parse.quote(parts.path, safe=keep),
                                    urllib.parse.quote(parts.query, safe=keep + "/"),
                                    urllib.parse.quote(parts.fragment, safe=keep)))


def safe_stem(text: str, max_len: int = 48) -> str:
    """A file-name stem from untrusted text: last path segment only, [A-Za-z0-9_-], no leading dots."""
    segment = re.split(r"[/\\]", urllib.parse.unquote(text))[-1]
    stem = segment.rsplit(".", 1)[0] if "." in segment.lstrip(".") else segment
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("._-")
    return stem[:max_len] or "file"


def url_key(url: str) -> str:
    """Stable 16-hex-digit key of a URL; every file downloaded from ``url`` starts with it."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _classify_network_error(exc: BaseException) -> _Permanent:
    """Map urllib/http.client/socket errors to retryable or final failures. Messages may quote a URL (a
    redirect target, say): every URL in them is redacted."""
    if isinstance(exc, urllib.error.HTTPError):
        code = exc.code
        retry_after = _retry_after_seconds(exc.headers.get("Retry-After") if exc.headers else None)
        exc.close()
        if code == 429 or 500 <= code < 600:
            return _Transient(f"http_{code}", redact_urls_in(exc.reason), retry_after)
        return _Permanent(f"http_{code}", redact_urls_in(exc.reason))
    if isinstance(exc, urllib.error.URLError):
        inner = exc.reason
        if isinstance(inner, PrivateAddressError):
            return _Permanent("private_address", redact_urls_in(inner))
        if isinstance(inner, TimeoutError):
            return _Transient("timeout", redact_urls_in(inner) or "timed out")
        return _Transient("connection_error", redact_urls_in(inner))
    if isinstance(exc, PrivateAddressError):
        return _Permanent("private_address", redact_urls_in(exc))
    if isinstance(exc, TimeoutError):
        return _Transient("timeout", redact_urls_in(exc) or "timed out")
    return _Transient("connection_error", redact_urls_in(f"{type(exc).__name__}: {exc}"))


_NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException, ssl.SSLError)


class Downloader:
    """Fetch images into ``dest_dir`` and JSON documents, politely and within bounds.

    ``sleep`` and ``clock`` are injectable so tests can check backoff and rate limiting without waiting.
    ``opener`` (anything with ``open(request, timeout=...)``) is injectable for fault-injection tests.
    """

    def __init__(
        self,
        dest_dir: str | os.PathLike,
        policy: DownloadPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        opener: Any = None,
    ) -> None:
        self.dest_dir = Path(dest_dir).resolve()
        self.dest_dir.mkdir(parents=True, exist_ok=True)
        self.policy = policy or DownloadPolicy()
        self._sleep = sleep
        self._clock = clock
        if opener is None:
            allow = self.policy.allow_private_networks
            handlers: list[Any] = [_HttpOnlyRedirects(), CheckedHTTPHandler(allow), CheckedHTTPSHandler(allow)]
            if not self.policy.use_env_proxies:
                handlers.append(urllib.request.ProxyHandler({}))
            opener = urllib.request.build_opener(*handlers)
        self._opener = opener
        self._last_request_at: dict[str, float] = {}
        self._index_path = self.dest_dir / INDEX_NAME
        self._index: dict[str, dict[str, Any]] = self._load_index()
        self._index_dirty = False
        self._last_flush_at = self._clock()
        self.request_count = 0  # attempts actually sent over the network (for logs and tests)
        # Temp files a killed run left behind (old enough that no live download owns them).
        remove_stale_temp_files(self.dest_dir, min_age_s=_STALE_TEMP_AGE_S)

    # ------------------------------------------------------------------ index
    def _load_index(self) -> dict[str, dict[str, Any]]:
        # A damaged index only costs re-hashing: files are found again by their URL-hash prefix.
        entries = read_json_object(self._index_path).get("entries")
        if not isinstance(entries, dict):
            return {}
        return {url: entry for url, entry in entries.items() if isinstance(entry, dict)}

    def flush_index(self) -> None:
        """Write ``downloads.json`` atomically if it changed."""
        if self._index_dirty:
            payload = {"version": 1, "entries": dict(sorted(self._index.items()))}
            write_text_atomic(self._index_path, json.dumps(payload, indent=1, ensure_ascii=False))
            self._index_dirty = False
        self._last_flush_at = self._clock()

    def _record(self, url: str, path: Path, size: int, sha256: str, image_type: str) -> None:
        self._index[url] = {"file": path.name, "bytes": size, "sha256": sha256, "type": image_type}
        self._index_dirty = True
        # Flushing after every file would be quadratic for big collections; the URL-hash file names make a
        # lost tail of the index recoverable, so flushing every few seconds is enough.
        if self._clock() - self._last_flush_at >= 2.0:
            self.flush_index()

    def __enter__(self) -> "Downloader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.flush_index()

    def _cached(self, url: str) -> DownloadResult | None:
        entry = self._index.get(url)
        if entry is not None:
            name = str(entry.get("file", ""))
            # The index is data on disk: accept only a plain, visible file name directly inside dest_dir.
            try:
                if not name or name != Path(name).name or name.startswith(".") or "\\" in name:
                    raise PathEscapeError(f"index entry {name!r} is not a plain file name")
                path: Path | None = safe_join(self.dest_dir, name)
            except PathEscapeError:
                path = None
            if path is not None:
                if path.is_file() and path.stat().st_size == entry.get("bytes"):
                    if not self.policy.verify_cached_sha256 or sha256_file(path) == entry.get("sha256"):
                        return DownloadResult(
                            url, path, "cached", bytes=int(entry["bytes"]), sha256=str(entry.get("sha256", "")),
                            image_type=str(entry.get("type", "")),
                        )
            # Indexed but missing or changed on disk: never trust that file again, download afresh.
            del self._index[url]
            self._index_dirty = True
            return None
        # Recovery: a file completed (renamed, so it is whole) but the index flush was lost.
        for candidate in sorted(self.dest_dir.glob(f"{url_key(url)}_*")):
            if candidate.is_symlink() or not candidate.is_file():
                continue
            with open(candidate, "rb") as handle:
                image_type = sniff_image_type(handle.read(_SNIFF_BYTES))
            if image_type is None or image_type not in self.policy.allowed_types:
                continue
            size, sha256 = candidate.stat().st_size, sha256_file(candidate)
            self._record(url, candidate, size, sha256, image_type)
            return DownloadResult(url, candidate, "cached", bytes=size, sha256=sha256, image_type=image_type)
        return None

    # ---------------------------------------------------------------- network
    def _wait_for_host(self, url: str, deadline: float) -> None:
        host = (urllib.parse.urlsplit(url).hostname or "").lower()
        last = self._last_request_at.get(host)
        if last is not None:
            wait = self.policy.min_interval_s - (self._clock() - last)
            if wait > 0:
                if self._clock() + wait >= deadline:
                    raise _Permanent("deadline", f"rate limit wait of {wait:.1f}s exceeds the per-URL deadline")
                self._sleep(wait)
        self._last_request_at[host] = self._clock()

    def _with_retries(self, url: str, handle: Callable[[Any, float], Any]) -> Any:
        """Open ``url`` and run ``handle(response, deadline)``, retrying transient failures with backoff."""
        problem = check_http_url(url)
        if problem:
            raise DownloadError(url, "bad_url", problem)
        policy = self.policy
        deadline = self._clock() + policy.deadline_s
        last: _Permanent | None = None
        attempts = 0
        for attempt in range(policy.retries + 1):
            remaining = deadline - self._clock()
            if remaining <= 0:
                last = _Permanent("deadline", f"{policy.deadline_s}s per-URL deadline reached")
                break
            try:
                request = urllib.request.Request(
                    _ascii_url(url), headers={"User-Agent": policy.user_agent, "Accept-Encoding": "identity"}
                )
                self._wait_for_host(url, deadline)
                attempts += 1
                self.request_count += 1
                try:
                    response = self._opener.open(request, timeout=min(policy.timeout_s, remaining))
                except _NETWORK_ERRORS as exc:
                    raise _classify_network_error(exc) from exc
                with response:
                    try:
                        return handle(response, deadline)
                    except _NETWORK_ERRORS as exc:
                        raise _classify_network_error(exc) from exc
            except _Transient as exc:
                last = exc
            except _Permanent as exc:
                raise DownloadError(url, exc.reason, exc.detail) from None
            if attempt == policy.retries:
                break
            delay = min(policy.backoff_cap_s, policy.backoff_s * (2**attempt))
            if last.retry_after_s is not None:  # type: ignore[union-attr]
                delay = max(delay, min(last.retry_after_s, policy.backoff_cap_s))  # type: ignore[union-attr]
            if self._clock() + delay >= deadline:
                break
            self._sleep(delay)
        assert last is not None
        raise DownloadError(url, last.reason, f"{last.detail} (gave up after {attempts} attempt(s))".strip())

    def _read_chunk(self, response: Any, n: int, deadline: float, what: str) -> bytes:
        """At most ``n`` bytes, whatever has arrived (one socket read): a plain ``read(n)`` would wait for all
        ``n`` bytes, so a server dripping a byte at a time could hold it far past the deadline."""
        if self._clock() > deadline:
            raise _Permanent("deadline", f"{self.policy.deadline_s}s per-URL deadline reached {what}")
        read1 = getattr(response, "read1", None)
        return read1(n) if read1 is not None else response.read(n)

    def _read_head(self, response: Any, n: int, deadline: float) -> bytes:
        head = b""
        while len(head) < n:
            chunk = self._read_chunk(response, n - len(head), deadline, "while reading the first bytes")
            if not chunk:
                break
            head += chunk
        return head

    @staticmethod
    def _declared_length(response: Any) -> int | None:
        length = response.headers.get("Content-Length")
        if length is None or response.headers.get("Transfer-Encoding"):
            return None
        try:
            return int(length)
        except ValueError:
            raise _Permanent("bad_response", f"invalid Content-Length {length!r}") from None

    def _check_length(self, response: Any, limit: int) -> None:
        declared = self._declared_length(response)
        if declared is not None and declared > limit:
            raise _Permanent("oversize", f"Content-Length {declared} > limit {limit} bytes")

    def _check_complete(self, response: Any, size: int) -> None:
        # http.client's read(amt) returns b"" when the peer closes early instead of raising IncompleteRead.
        declared = self._declared_length(response)
        if declared is not None and size < declared:
            raise _Transient("connection_error", f"connection closed after {size} of {declared} bytes")

    def fetch(self, url: str, *, name_hint: str | None = None) -> DownloadResult:
        """Download one image into ``dest_dir`` (or reuse the copy already there). Never raises for network or
        content problems: those come back as ``status == "failed"`` with a ``reason`` code."""
        problem = check_http_url(url)
        if problem:
            return DownloadResult(url, None, "failed", "bad_url", problem)
        cached = self._cached(url)
        if cached is not None:
            return cached
        stem = f"{url_key(url)}_{safe_stem(name_hint if name_hint else urllib.parse.urlsplit(url).path)}"

        def handle(response: Any, deadline: float) -> DownloadResult:
            policy = self.policy
            self._check_length(response, policy.max_bytes)
            content_type = (response.headers.get_content_type() or "").lower()
            declared_type = response.headers.get("Content-Type")
            if declared_type is not None and not (
                content_type.startswith("image/") or content_type == "application/octet-stream"
            ):
                raise _Permanent("wrong_content_type", f"Content-Type {declared_type!r}")
            head = self._read_head(response, _SNIFF_BYTES, deadline)
            image_type = sniff_image_type(head)
            if image_type is None or image_type not in policy.allowed_types:
                # The kind of body only, never its bytes: a server's error page may echo tokens or worse.
                what = (f"a {image_type} image, not an allowed type" if image_type
                        else describe_non_image(head, show_bytes=False))
                raise _Permanent("wrong_type", f"body is {what} (Content-Type {declared_type!r:.80})")
            final_path = safe_join(self.dest_dir, stem + _SUFFIX_FOR_TYPE[image_type])
            digest = hashlib.sha256(head)
            size = len(head)
            with atomic_path(final_path) as tmp_path:
                with open(tmp_path, "wb") as out:
                    out.write(head)
                    while True:
                        chunk = self._read_chunk(response, _CHUNK, deadline, "mid-stream")
                        if not chunk:
                            break
                        size += len(chunk)
                        if size > policy.max_bytes:
                            raise _Permanent("oversize", f"body exceeds limit {policy.max_bytes} bytes")
                        digest.update(chunk)
                        out.write(chunk)
                    self._check_complete(response, size)
                    out.flush()
                    os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            self._record(url, final_path, size, sha256, image_type)
            return DownloadResult(url, final_path, "downloaded", bytes=size, sha256=sha256, image_type=image_type)

        try:
            return self._with_retries(url, handle)
        except DownloadError as exc:
            return DownloadResult(url, None, "failed", exc.reason, exc.detail)

    def fetch_json(self, url: str) -> Any:
        """GET ``url`` and parse it as JSON (size-bounded). Raises DownloadError with a reason code."""

        def handle(response: Any, deadline: float) -> Any:
            limit = self.policy.max_json_bytes
            self._check_length(response, limit)
            parts: list[bytes] = []
            size = 0
            while True:
                chunk = self._read_chunk(response, _CHUNK, deadline, "mid-stream")
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise _Permanent("oversize", f"JSON body exceeds limit {limit} bytes")
                parts.append(chunk)
            self._check_complete(response, size)
            charset = response.headers.get_content_charset() or "utf-8"
            try:
                return json.loads(b"".join(parts).decode(charset))
            except (UnicodeDecodeError, LookupError, ValueError, RecursionError) as exc:
                # RecursionError: absurdly deep nesting ([[[[...) from a broken or hostile server.
                raise _Permanent("bad_json", f"{type(exc).__name__}: {exc}"[:300]) from None

        return self._with_retries(url, handle)

