"""The HTTP side of a download: the record's metadata JSON, and each file fetched to ``NAME.part``,
resumed with a ``Range`` request, bounded in size, verified against the record's size and
checksum, then renamed to ``NAME``; with a progress line per file on stderr.

Only the standard library is used (:mod:`urllib`, :mod:`hashlib`, :mod:`json`).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import IO, Any, Optional, Union

from .record import DREAM2022_RECORD, ZENODO_API_URL, DownloadError, RemoteFile, join_url, parse_record_id

__all__ = ["MAX_RECORD_BYTES", "MAX_UNSIZED_BYTES", "PART_SUFFIX", "download_file", "fetch_record"]

#: Most bytes read for a file whose record entry gives no size (a file with a size is read up
#: to that size and no further), and for the record metadata JSON. The DREAM 2022 files are
#: well under 1 GB each.
MAX_UNSIZED_BYTES = 16 * 1024**3
MAX_RECORD_BYTES = 64 * 1024**2

# The suffix of a file being downloaded (renamed to NAME once verified).
PART_SUFFIX = ".part"

# Bytes read from the network (and from disk when hashing) at a time: large enough for few
# system calls, small enough that progress updates stay smooth.
_CHUNK = 1 << 16

# Progress lines are redrawn at most this often (seconds), so a fast download does not
# flood a terminal or a log file.
_PROGRESS_INTERVAL = 0.5

_USER_AGENT = "proformer-download (+https://doi.org/10.5281/zenodo.10633252)"

# Network failures that leave the local state untouched or resumable. HTTPException covers
# IncompleteRead and RemoteDisconnected, which urllib lets through unwrapped; OSError covers
# URLError, timeouts and connection resets.
_NETWORK_ERRORS = (OSError, http.client.HTTPException)


def fetch_record(
    record: Union[str, int] = DREAM2022_RECORD,
    *,
    api_url: str = ZENODO_API_URL,
    timeout: float = 60,
) -> dict[str, Any]:
    """Fetch the metadata JSON of a Zenodo record from the records API.

    Parameters
    ----------
    record : str or int, optional
        Zenodo record id or DOI.
    api_url : str, optional
        Base URL of the records API.
    timeout : float, optional
        Socket timeout in seconds.

    Returns
    -------
    dict
        The decoded JSON object.

    Raises
    ------
    DownloadError
        If the request fails or the answer is not a JSON object.
    """
    url = join_url(api_url, parse_record_id(record))
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": _USER_AGENT}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_RECORD_BYTES + 1)
    except urllib.error.HTTPError as err:
        raise DownloadError(
            f"could not fetch the Zenodo record metadata from {url}: HTTP {err.code} "
            f"{err.reason}. Check the record id and re-run."
        ) from err
    except _NETWORK_ERRORS as err:
        raise DownloadError(
            f"could not fetch the Zenodo record metadata from {url}: {_reason(err)}. "
            "Check the network connection and re-run."
        ) from err
    if len(body) > MAX_RECORD_BYTES:
        raise DownloadError(
            f"the answer of {url} is longer than {_human(MAX_RECORD_BYTES)}, far more than a "
            "record's metadata; check the record id and --api-url."
        )
    try:
        metadata = json.loads(body)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise DownloadError(f"the answer of {url} is not valid JSON: {err}") from err
    if not isinstance(metadata, dict):
        raise DownloadError(f"the answer of {url} is not a JSON object")
    return metadata


def _digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file's content."""
    # usedforsecurity=False keeps md5 available on FIPS-restricted Pythons; this is an
    # integrity check, not a security one.
    hasher = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK * 16), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def _is_complete(path: Path, item: RemoteFile) -> bool:
    """True if ``path`` exists with the record's size and checksum."""
    if not path.is_file():
        return False
    if item.size is not None and path.stat().st_size != item.size:
        return False
    if item.digest is not None and _digest(path, item.algorithm) != item.digest:
        return False
    return True


def download_file(
    item: RemoteFile, dest: Path, *, timeout: float, stream: Optional[IO[str]]
) -> None:
    """Download one file to ``dest`` via ``dest.part``, resuming and verifying it."""
    if dest.exists():
        if _is_complete(dest, item):
            _say(stream, f"{item.key}: already present with the right size and checksum, skipped")
            return
        _say(stream, f"{item.key}: present but differs from the record, downloading again")

    if item.digest is None:
        warnings.warn(
            f"{item.key}: the Zenodo record gives no checksum for this file, so its content cannot "
            "be verified (only its size, where the record gives one)",
            UserWarning,
            stacklevel=3,
        )
    part = dest.with_name(dest.name + PART_SUFFIX)
    _fetch_to_part(item, part, timeout=timeout, stream=stream)
    _verify(item, part)
    os.replace(part, dest)


def _fetch_to_part(
    item: RemoteFile, part: Path, *, timeout: float, stream: Optional[IO[str]], retry: bool = True
) -> None:
    """Bring ``part`` up to the full file, asking only for the missing bytes if possible."""
    offset = part.stat().st_size if part.exists() else 0
    if item.size is not None and offset > item.size:
        # Longer than the real file, so it cannot be a prefix of it.
        part.unlink()
        offset = 0
    if offset and offset == item.size:
        # Already all there (e.g. interrupted between download and rename); a Range request
        # would only earn a 416. Verification decides whether it is good.
        return

    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(item.url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset and retry:
            # The server will not serve from this offset (stale or foreign .part): start over.
            part.unlink()
            return _fetch_to_part(item, part, timeout=timeout, stream=stream, retry=False)
        raise DownloadError(
            f"could not download {item.key} from {item.url}: HTTP {err.code} {err.reason}. "
            "Re-run to try again."
        ) from err
    except _NETWORK_ERRORS as err:
        raise _network_error(item, part, err) from err

    with response:
        if offset and response.status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                # Appending bytes from another offset would corrupt the file silently.
                if not retry:
                    raise DownloadError(
                        f"could not download {item.key} from {item.url}: the server answered "
                        f"a request for bytes {offset}- with Content-Range "
                        f"{response.headers.get('Content-Range')!r}. Re-run to try again."
                    )
                response.close()
                part.unlink()
                return _fetch_to_part(item, part, timeout=timeout, stream=stream, retry=False)
            mode = "ab"
        elif response.status == 200:
            # A full answer (the server ignores Range, or none was sent): start from byte 0.
            if offset:
                _say(stream, f"{item.key}: server does not support resuming, restarting")
            offset = 0
            mode = "wb"
        else:
            raise DownloadError(
                f"could not download {item.key} from {item.url}: unexpected HTTP status "
                f"{response.status}. Re-run to try again."
            )

        # Never read more than the file can hold: its size, or a generous bound without one.
        limit = item.size if item.size is not None else MAX_UNSIZED_BYTES
        meter = _Progress(item.key, item.size, offset, stream)
        too_long = False
        try:
            # Opened in the with-block so bytes already received are flushed to the .part
            # file even when the connection breaks; the next run resumes from them.
            with open(part, mode) as fh:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    if meter.done + len(chunk) > limit:
                        too_long = True
                        break
                    fh.write(chunk)
                    meter.update(len(chunk))
        except _NETWORK_ERRORS as err:
            meter.finish("interrupted")
            raise _network_error(item, part, err) from err
        if too_long:
            meter.finish("too long")
            part.unlink(missing_ok=True)
            if item.size is not None:
                raise DownloadError(
                    f"size mismatch for {item.key}: expected {item.size} bytes, the server sent more "
                    f"(from {item.url}). The partial file was deleted; re-run to download it again."
                )
            raise DownloadError(
                f"could not download {item.key} from {item.url}: the record gives no size and the server "
                f"sent more than {_human(MAX_UNSIZED_BYTES)} (proformer.download.transfer.MAX_UNSIZED_BYTES), the "
                "most read for such a file. The partial file was deleted; check the record and the server."
            )

        # http.client's read(amt) ends quietly, without IncompleteRead, when the connection
        # closes before Content-Length bytes have arrived, so the count is checked here. Such
        # a cut is resumable; a body complete but of the wrong size is left to _verify.
        received = meter.done - offset
        promised = response.headers.get("Content-Length", "")
        if promised.isdigit() and received < int(promised):
            meter.finish("interrupted")
            cut = ConnectionError(f"connection closed after {received} of {promised} bytes")
            raise _network_error(item, part, cut)
        meter.finish()
    return None


def _content_range_start(value: Optional[str]) -> Optional[int]:
    """First byte position of a ``Content-Range: bytes START-END/TOTAL`` header, or None."""
    match = re.match(r"\s*bytes\s+(\d+)-", value or "")
    return int(match.group(1)) if match else None


def _verify(item: RemoteFile, part: Path) -> None:
    """Check size and checksum of a finished ``.part`` file; delete it and raise if wrong."""
    size = part.stat().st_size
    if item.size is not None and size != item.size:
        part.unlink()
        raise DownloadError(
            f"size mismatch for {item.key}: expected {item.size} bytes, got {size} bytes "
            f"(from {item.url}). The partial file was deleted; re-run to download it again."
        )
    if item.digest is not None:
        actual = _digest(part, item.algorithm)
        if actual != item.digest:
            part.unlink()
            raise DownloadError(
                f"checksum mismatch for {item.key}: expected {item.algorithm}:{item.digest}, "
                f"got {item.algorithm}:{actual} (from {item.url}). The partial file was "
                "deleted; re-run to download it again."
            )


def _network_error(item: RemoteFile, part: Path, err: BaseException) -> DownloadError:
    """The error raised when the connection fails during a file download."""
    kept = part.stat().st_size if part.exists() else 0
    hint = (
        f"{kept} bytes are kept in {part} and a re-run resumes from there"
        if kept
        else "re-run to try again"
    )
    return DownloadError(f"could not download {item.key} from {item.url}: {_reason(err)}; {hint}.")


def _reason(err: BaseException) -> str:
    """A short human description of a network exception."""
    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        return str(err.reason) or type(err).__name__
    if isinstance(err, http.client.IncompleteRead):
        # Its default str() includes a repr of the partial data; the counts say enough.
        return f"connection closed early ({len(err.partial)} bytes of the response received)"
    return str(err) or type(err).__name__


def _say(stream: Optional[IO[str]], message: str) -> None:
    """Write a line of status to ``stream`` (nothing when progress output is off)."""
    if stream is not None:
        print(message, file=stream, flush=True)


def _human(n: float) -> str:
    """Byte count in readable units (``"1.5 MB"``)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover - the loop always returns


class _Progress:
    """One self-overwriting progress line (``\\r``) for a file, redrawn at most every 0.5 s."""

    def __init__(
        self, name: str, total: Optional[int], done: int, stream: Optional[IO[str]]
    ) -> None:
        self.name = name
        self.total = total
        self.done = done
        self.stream = stream
        self.width = 0  # length of the last line, to blank out leftovers of a longer one
        self.last = time.monotonic()
        self._draw()

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= _PROGRESS_INTERVAL:
            self.last = now
            self._draw()

    def finish(self, note: str = "") -> None:
        self._draw(note)
        if self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, note: str = "") -> None:
        if self.stream is None:
            return
        text = f"{self.name}: {_human(self.done)}"
        if self.total:
            text += f" / {_human(self.total)} ({100 * self.done / self.total:.0f}%)"
        if note:
            text += f" {note}"
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)
