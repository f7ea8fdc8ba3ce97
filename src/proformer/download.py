"""Download the official DREAM 2022 challenge files from Zenodo, with resume and checksums.

The challenge data are published as the public Zenodo record `10.5281/zenodo.10633252
<https://doi.org/10.5281/zenodo.10633252>`_. :func:`download_dream2022` asks the Zenodo REST
API for the record (``GET {api_url}{record}``), which lists every file with its size, checksum
and download link, then fetches the files one by one:

* each file is written to ``NAME.part`` and renamed to ``NAME`` only once its size and
  checksum (``md5`` or ``sha256``, as the record says) are verified, so a file without the
  ``.part`` suffix is always complete;
* an interrupted download keeps its ``.part`` file; the next run asks the server for the
  missing bytes only (``Range: bytes=N-``) and starts over if the server does not honour it;
* a file already present with the right size and checksum is not downloaded again;
* the record metadata is saved as ``zenodo_record.json`` next to the files, so the checksums
  the files were verified against stay on record.

Only the standard library is used (:mod:`urllib`, :mod:`hashlib`, :mod:`json`).

Example
-------
>>> from proformer.download import download_dream2022
>>> paths = download_dream2022("data/dream2022")                       # doctest: +SKIP
>>> paths = download_dream2022("data", files=["test_sequences.txt"])   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable, Optional, Union

__all__ = [
    "DREAM2022_RECORD",
    "ZENODO_API_URL",
    "RECORD_FILENAME",
    "DownloadError",
    "RemoteFile",
    "download_dream2022",
    "fetch_record",
    "record_files",
]

#: Zenodo record id of the DREAM 2022 challenge data (DOI 10.5281/zenodo.10633252).
DREAM2022_RECORD = "10633252"

#: Base URL of the Zenodo records API; the record id is appended to it.
ZENODO_API_URL = "https://zenodo.org/api/records/"

#: Name of the record metadata file written next to the downloaded files.
RECORD_FILENAME = "zenodo_record.json"

#: Most bytes read for a file whose record entry gives no size (a file with a size is read up
#: to that size and no further), and for the record metadata JSON. The DREAM 2022 files are
#: well under 1 GB each.
MAX_UNSIZED_BYTES = 16 * 1024**3
MAX_RECORD_BYTES = 64 * 1024**2

# Suffixes the download gives its own files beside the downloaded ones.
_PART_SUFFIX = ".part"
_TMP_SUFFIX = ".tmp"

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


class DownloadError(RuntimeError):
    """A download could not be completed (network failure, bad record, failed verification)."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a Zenodo record, as listed by the records API.

    Attributes
    ----------
    key : str
        File name in the record (also the local file name).
    url : str
        Download link of the file's content.
    size : int or None
        Size in bytes, or None when the record does not give it.
    algorithm : str or None
        Checksum algorithm (``"md5"`` or ``"sha256"``), or None when the record has no checksum.
    digest : str or None
        Expected checksum as lower-case hex, or None.
    """

    key: str
    url: str
    size: Optional[int]
    algorithm: Optional[str]
    digest: Optional[str]

    @property
    def checksum(self) -> Optional[str]:
        """The expected checksum as ``"algorithm:hex"`` (the record's notation), or None."""
        return f"{self.algorithm}:{self.digest}" if self.digest else None


def download_dream2022(
    out_dir: Union[str, os.PathLike],
    *,
    record: Union[str, int] = DREAM2022_RECORD,
    api_url: str = ZENODO_API_URL,
    files: Optional[Iterable[str]] = None,
    progress: bool = True,
    timeout: float = 60,
) -> list[Path]:
    """Download the DREAM 2022 challenge files from Zenodo into ``out_dir``.

    Parameters
    ----------
    out_dir : str or path-like
        Directory for the files; created if needed.
    record : str or int, optional
        Zenodo record id (default: the DREAM 2022 record ``10633252``). A DOI such as
        ``"10.5281/zenodo.10633252"`` is accepted too.
    api_url : str, optional
        Base URL of the Zenodo records API; ``GET {api_url}{record}`` must return the record
        JSON. Changed only for tests or mirrors.
    files : iterable of str, optional
        File names (record keys) to download; default all files of the record. Order is kept.
    progress : bool, optional
        Write one progress line per file, and a note for skipped files, to stderr.
    timeout : float, optional
        Socket timeout in seconds for each connection and read.

    Returns
    -------
    list of pathlib.Path
        Local paths of the requested files, in record order (or in the order of ``files``).

    Raises
    ------
    ValueError
        If ``files`` names a key that is not in the record (the message lists the available
        keys).
    DownloadError
        If the record or a file cannot be fetched (the message names the URL; re-running
        resumes where it stopped), or if a downloaded file has the wrong size or checksum (the
        partial file is deleted so that a re-run starts afresh).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    record_id = _record_id(record)
    metadata = fetch_record(record_id, api_url=api_url, timeout=timeout)
    remote = record_files(metadata, record=record_id, api_url=api_url)
    selected = _select(remote, files, record_id)
    _check_local_names(selected, out, record_id)

    # Saved before the downloads so that the checksums used for verification are on disk
    # even if a download fails half-way.
    _write_json(out / RECORD_FILENAME, metadata)

    stream = sys.stderr if progress else None
    paths = []
    for item in selected:
        dest = out / item.key
        _download_file(item, dest, timeout=timeout, stream=stream)
        paths.append(dest)
    return paths


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
    url = _join(api_url, _record_id(record))
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


def record_files(
    metadata: dict[str, Any],
    *,
    record: Union[str, int] = DREAM2022_RECORD,
    api_url: str = ZENODO_API_URL,
) -> list[RemoteFile]:
    """List the files of a Zenodo record from its metadata JSON.

    Two shapes are understood: the records API's ``{"files": [{"key", "size", "checksum",
    "links": {"self"}}, ...]}`` and the InvenioRDM variant ``{"files": {"entries": [...]}}``
    (entries as a list or a dict keyed by file name, link in ``links.content``).

    Parameters
    ----------
    metadata : dict
        Record JSON, as returned by :func:`fetch_record`.
    record : str or int, optional
        Record id, used only to build a download link when an entry has none.
    api_url : str, optional
        Base URL of the records API, used likewise.

    Returns
    -------
    list of RemoteFile
        The files in record order.

    Raises
    ------
    DownloadError
        If the JSON has no file list, or an entry has no usable name or an unsupported
        checksum.
    """
    listing = metadata.get("files")
    if isinstance(listing, dict):
        listing = listing.get("entries")
    if isinstance(listing, dict):
        # InvenioRDM keys entries by file name; the entry itself may omit "key".
        listing = [{"key": name, **entry} for name, entry in listing.items()]
    if not isinstance(listing, list):
        raise DownloadError("the Zenodo record JSON has no file list ('files')")

    result, seen = [], set()
    for entry in listing:
        if not isinstance(entry, dict):
            raise DownloadError(f"unexpected file entry in the Zenodo record JSON: {entry!r}")
        key = entry.get("key") or entry.get("filename")
        # The key becomes a local file name: refuse anything that could leave out_dir.
        if not isinstance(key, str) or key in ("", ".", "..") or "/" in key or "\\" in key or "\0" in key:
            raise DownloadError(f"unusable file name in the Zenodo record JSON: {key!r}")
        if key in seen:
            raise DownloadError(f"the Zenodo record JSON lists the file {key!r} twice")
        seen.add(key)

        links = entry.get("links") or {}
        # "content" is always the bytes; in the records API "self" is the bytes too
        # (".../files/NAME/content"), whereas in InvenioRDM it is the entry's metadata.
        url = links.get("content") or links.get("self") or links.get("download")
        if not url:
            url = _join(api_url, f"{_record_id(record)}/files/{urllib.parse.quote(key)}/content")

        size = entry.get("size", entry.get("filesize"))
        try:
            size = int(size) if size is not None else None
        except (TypeError, ValueError):
            raise DownloadError(f"unusable size {size!r} for {key} in the Zenodo record JSON") from None
        if size is not None and size < 0:
            raise DownloadError(f"unusable size {size!r} for {key} in the Zenodo record JSON")
        algorithm, digest = _parse_checksum(entry.get("checksum"), key)
        result.append(RemoteFile(key=key, url=url, size=size, algorithm=algorithm, digest=digest))
    return result


# --------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------


def _record_id(record: Union[str, int]) -> str:
    """Return the numeric record id of ``record`` (an id, or a DOI ending in ``zenodo.N``)."""
    text = str(record).strip()
    match = re.fullmatch(r"(?:.*zenodo\.)?(\d+)", text)
    if not match:
        raise ValueError(f"not a Zenodo record id or DOI: {record!r}")
    return match.group(1)


def _join(base: str, tail: str) -> str:
    """Append ``tail`` to ``base`` with exactly one slash between them."""
    return base.rstrip("/") + "/" + tail


def _parse_checksum(value: Any, key: str) -> tuple[Optional[str], Optional[str]]:
    """Split a record checksum (``"md5:<hex>"``) into algorithm and lower-case hex digest."""
    if not value:
        return None, None
    text = str(value).strip().lower()
    if ":" in text:
        algorithm, digest = text.split(":", 1)
    else:
        # Older records give a bare digest; its length tells the algorithm.
        algorithm = {32: "md5", 64: "sha256"}.get(len(text), "")
        digest = text
    if algorithm not in ("md5", "sha256"):
        raise DownloadError(f"unsupported checksum {value!r} for {key} (expected md5 or sha256)")
    return algorithm, digest


def _select(
    remote: list[RemoteFile], files: Optional[Iterable[str]], record: str
) -> list[RemoteFile]:
    """Restrict ``remote`` to the keys in ``files`` (all when None), in the order given."""
    if files is None:
        return remote
    if isinstance(files, str):
        # A single name passed as a string would otherwise be iterated letter by letter.
        files = [files]
    by_key = {item.key: item for item in remote}
    wanted = list(dict.fromkeys(files))  # drops repeats, keeps order
    unknown = [key for key in wanted if key not in by_key]
    if unknown:
        raise ValueError(
            f"file(s) not in Zenodo record {record}: {', '.join(map(repr, unknown))}; "
            f"available: {', '.join(by_key)}"
        )
    return [by_key[key] for key in wanted]


def _name_max(directory: Path) -> int:
    """Longest file name (bytes) the file system of ``directory`` allows."""
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):
        return 255


def _check_local_names(selected: list[RemoteFile], out: Path, record: str) -> None:
    """Refuse, before anything is written, a file whose local name the download cannot use:
    one that is, or would be overwritten by, the download's own files (the record metadata,
    its ``.tmp``, another file's ``.part``), or one too long for the file system."""
    own = {RECORD_FILENAME: "the record metadata file", RECORD_FILENAME + _TMP_SUFFIX: "the record metadata file's temporary file"}
    limit = _name_max(out)
    for item in selected:
        why = own.get(item.key)
        if why is None and item.key.endswith(_PART_SUFFIX):
            why = "the name of a partial download (the download keeps an unfinished file as NAME.part)"
        if why is not None:
            raise DownloadError(
                f"file {item.key!r} of Zenodo record {record} has the name of {why}, so the two "
                "would overwrite each other; leave it out with files=[...] (--files) or download it by hand"
            )
        length = len(os.fsencode(item.key + _PART_SUFFIX))
        if length > limit:
            raise DownloadError(
                f"file name {item.key[:60]!r}... of Zenodo record {record} is {len(os.fsencode(item.key))} bytes "
                f"long; with {_PART_SUFFIX!r} it exceeds the {limit} bytes the file system of {out} allows. "
                "Leave it out with files=[...] (--files) or download it by hand"
            )


def _write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + _TMP_SUFFIX)
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


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


def _download_file(
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
    part = dest.with_name(dest.name + _PART_SUFFIX)
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
                f"sent more than {_human(MAX_UNSIZED_BYTES)} (proformer.download.MAX_UNSIZED_BYTES), the "
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
