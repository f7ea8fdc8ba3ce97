"""Download the official DREAM 2022 challenge files from Zenodo, with resume and checksums.

The data are the public Zenodo record `10.5281/zenodo.10633252 <https://doi.org/10.5281/zenodo.10633252>`_.
:func:`download_dream2022` asks the Zenodo REST API for the record (``GET {api_url}{record}``), whose
file list (sizes, checksums, links; read by :func:`record_files`, no network) it saves as
``zenodo_record.json`` next to the files, then gets each file with :func:`pooch.retrieve`. pooch
checks it against the record's md5 or sha256 and moves it to ``NAME`` only when it matches, so a
file at ``NAME`` is complete and verified, and one already there is not downloaded again. pooch
restarts a broken download from zero, so its downloader here (:func:`_resume`) keeps the bytes
received in ``NAME.part`` and the next run asks only for the rest (``Range: bytes=N-``).

>>> from proformer.download import download_dream2022
>>> paths = download_dream2022("data/dream2022", files=["test_sequences.txt"])   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import pooch
import requests
from requests.utils import quote
from tqdm import tqdm

__all__ = ["DREAM2022_RECORD", "ZENODO_API_URL", "RECORD_FILENAME", "DownloadError", "RemoteFile",
           "download_dream2022", "fetch_record", "record_files"]

#: Zenodo record id of the DREAM 2022 challenge data (DOI 10.5281/zenodo.10633252).
DREAM2022_RECORD = "10633252"
#: Base URL of the Zenodo records API; the record id is appended to it.
ZENODO_API_URL = "https://zenodo.org/api/records/"
#: Name of the record metadata file written next to the downloaded files.
RECORD_FILENAME = "zenodo_record.json"
#: Most bytes read for the record metadata JSON, and for a file whose record entry gives no size
#: (a file with a size is read up to that size and no further). The DREAM files are well under 1 GB.
MAX_RECORD_BYTES = 64 * 1024**2
MAX_UNSIZED_BYTES = 16 * 1024**3

# A file being downloaded is kept as NAME.part until complete; the metadata file as .tmp while written.
PART_SUFFIX = ".part"
_TMP_SUFFIX = ".tmp"
_CHUNK = 1 << 16  # bytes read at a time; a cut connection loses at most the last, partial one
_USER_AGENT = "proformer-download (+https://doi.org/10.5281/zenodo.10633252)"


# The record: the files it lists (no network) --------------------------------------------------


class DownloadError(RuntimeError):
    """A download could not be completed (network failure, bad record, failed verification)."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a Zenodo record: its name (``key``, also the local name), download ``url``, ``size``
    in bytes and ``checksum`` (``"md5:<hex>"`` or ``"sha256:<hex>"``, the record's and pooch's
    notation); size and checksum are None when the record does not give them."""

    key: str
    url: str
    size: Optional[int]
    checksum: Optional[str]


def record_files(metadata: dict[str, Any], *, record: Union[str, int] = DREAM2022_RECORD,
                 api_url: str = ZENODO_API_URL) -> list[RemoteFile]:
    """List the files of a Zenodo record, in record order, from its metadata JSON.

    Two shapes are understood: the records API's ``{"files": [{"key", "size", "checksum",
    "links": {"self"}}, ...]}`` and the InvenioRDM variant ``{"files": {"entries": [...]}}``
    (entries as a list or a dict keyed by file name, link in ``links.content``). ``record`` and
    ``api_url`` only build a download link for an entry that has none.

    Raises :class:`DownloadError` if the JSON has no file list, or an entry has no usable name,
    size or checksum, or a name comes twice.
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
            url = f"{api_url.rstrip('/')}/{parse_record_id(record)}/files/{quote(key, safe='')}/content"

        size = entry.get("size", entry.get("filesize"))
        if size is not None and not str(size).isdigit():
            raise DownloadError(f"unusable size {size!r} for {key} in the Zenodo record JSON")
        result.append(RemoteFile(key, url, None if size is None else int(size), _parse_checksum(entry.get("checksum"), key)))
    return result


def parse_record_id(record: Union[str, int]) -> str:
    """Return the numeric record id of ``record`` (an id, or a DOI ending in ``zenodo.N``)."""
    match = re.fullmatch(r"(?:.*zenodo\.)?(\d+)", str(record).strip())
    if not match:
        raise ValueError(f"not a Zenodo record id or DOI: {record!r}")
    return match.group(1)


def _parse_checksum(value: Any, key: str) -> Optional[str]:
    """A record checksum as lower-case ``"algorithm:hex"``; older records give a bare digest, whose
    length tells the algorithm."""
    if not value:
        return None
    text = str(value).strip().lower()
    algorithm, digest = text.split(":", 1) if ":" in text else ({32: "md5", 64: "sha256"}.get(len(text), ""), text)
    if algorithm not in ("md5", "sha256") or not re.fullmatch(r"[0-9a-f]+", digest):
        raise DownloadError(f"unsupported checksum {value!r} for {key} (expected md5 or sha256)")
    return f"{algorithm}:{digest}"


def select_files(remote: list[RemoteFile], files: Optional[Iterable[str]], record: str) -> list[RemoteFile]:
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
        raise ValueError(f"file(s) not in Zenodo record {record}: {', '.join(map(repr, unknown))}; "
                         f"available: {', '.join(by_key)}")
    return [by_key[key] for key in wanted]


# The network: the record, then each file through pooch -------------------------------------------


def fetch_record(record: Union[str, int] = DREAM2022_RECORD, *, api_url: str = ZENODO_API_URL,
                 timeout: float = 60) -> dict[str, Any]:
    """Fetch the metadata JSON object of a Zenodo record from the records API; a failed request or
    an answer that is not a JSON object raises :class:`DownloadError` naming the URL."""
    url = f"{api_url.rstrip('/')}/{parse_record_id(record)}"
    body = bytearray()
    try:
        with requests.get(url, headers={"Accept": "application/json", "User-Agent": _USER_AGENT},
                          timeout=timeout, stream=True) as response:
            response.raise_for_status()
            for chunk in response.iter_content(_CHUNK):
                body += chunk
                if len(body) > MAX_RECORD_BYTES:
                    raise DownloadError(f"the answer of {url} is longer than {MAX_RECORD_BYTES} bytes, far more "
                                        "than a record's metadata; check the record id and the API URL.")
    except requests.RequestException as err:
        raise DownloadError(f"could not fetch the Zenodo record metadata from {url}: {_reason(err)}. "
                            "Check the record id and the network connection, and re-run.") from err
    try:
        metadata = json.loads(body)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise DownloadError(f"the answer of {url} is not valid JSON: {err}") from err
    if not isinstance(metadata, dict):
        raise DownloadError(f"the answer of {url} is not a JSON object")
    return metadata


def download_dream2022(out_dir: Union[str, os.PathLike], *, record: Union[str, int] = DREAM2022_RECORD,
                       api_url: str = ZENODO_API_URL, files: Optional[Iterable[str]] = None, progress: bool = True,
                       timeout: float = 60) -> list[Path]:
    """Download the DREAM 2022 challenge files from Zenodo into ``out_dir`` (created if needed) and
    return their paths, in record order or in the order of ``files``.

    ``record`` is a Zenodo record id or DOI (default the DREAM 2022 record); ``api_url`` the base
    URL of the records API (``GET {api_url}{record}`` returns the record JSON), changed only for
    tests or mirrors; ``files`` the record keys to get (default all); ``progress`` shows a tqdm bar
    per file, and a note for a file already present, on stderr; ``timeout`` is in seconds for the
    connection and each read.

    Raises ValueError if ``files`` names a key not in the record (the message lists those there),
    and :class:`DownloadError` if the record or a file cannot be fetched (the message names the
    URL; a re-run resumes where it stopped) or a file has the wrong size or checksum (nothing is
    kept of it, so a re-run starts afresh).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record_id = parse_record_id(record)
    metadata = fetch_record(record_id, api_url=api_url, timeout=timeout)
    selected = select_files(record_files(metadata, record=record_id, api_url=api_url), files, record_id)
    _check_local_names(selected, out, record_id)
    # Saved before the downloads, so the checksums used for verification are on disk even if one fails.
    _write_json(out / RECORD_FILENAME, metadata)
    for item in selected:
        if item.checksum is None:
            warnings.warn(f"{item.key}: the Zenodo record gives no checksum for this file, so its content cannot "
                          "be verified (only its size, where the record gives one)", UserWarning, stacklevel=2)

    logger, level = pooch.get_logger(), pooch.get_logger().level
    logger.setLevel("WARNING")  # pooch's INFO lines repeat the URL and suggest a hash to pin; the bar says enough
    try:
        return [_download(item, out, timeout=timeout, progress=progress) for item in selected]
    finally:
        logger.setLevel(level)


def _download(item: RemoteFile, out: Path, *, timeout: float, progress: bool) -> Path:
    """One file through :func:`pooch.retrieve`, its errors turned into one line that says what to do."""
    part = out / (item.key + PART_SUFFIX)
    downloader = functools.partial(_resume, item=item, part=part, timeout=timeout, progress=progress)
    try:
        pooch.retrieve(item.url, known_hash=item.checksum, fname=item.key, path=out, downloader=downloader,
                       processor=functools.partial(_note, item=item, progress=progress))
    except requests.RequestException as err:
        kept = part.stat().st_size if part.exists() else 0
        hint = f"{kept} bytes are kept in {part} and a re-run resumes from there" if kept else "re-run to try again"
        raise DownloadError(f"could not download {item.key} from {item.url}: {_reason(err)}; {hint}.") from err
    except ValueError as err:  # pooch's hash check, which has already deleted the file
        got = re.search(r"does not match the known hash: .* but got (\w+)", str(err))
        if got is None:
            raise
        raise DownloadError(f"checksum mismatch for {item.key}: expected {item.checksum}, got "
                            f"{item.checksum.split(':')[0]}:{got.group(1)} (from {item.url}). Nothing was kept; "
                            "re-run to download it again.") from err
    return out / item.key


def _resume(url: str, output_file: str, _pooch: Any, *, item: RemoteFile, part: Path, timeout: float,
            progress: bool) -> None:
    """A pooch downloader that resumes: bring ``part`` up to the whole file, asking the server only
    for the bytes it lacks, then move it to ``output_file`` for pooch's hash check.

    Whole chunks received stay in ``part`` when the connection breaks. A server that answers the
    ``Range`` request with the whole file (200) restarts it; one that refuses the range (416) or
    sends another is asked again from byte 0. Reads stop at the record's size (or
    :data:`MAX_UNSIZED_BYTES` without one); a file of the wrong size is deleted and refused.
    """
    offset = part.stat().st_size if part.exists() else 0
    if item.size is not None and offset > item.size:
        part.unlink()  # longer than the file, so not a prefix of it
        offset = 0
    if not (part.exists() and offset == item.size):  # else all there (cut before the rename): no request
        # identity: a byte range of a gzip-encoded answer would not be a range of the file.
        headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
        headers.update({"Range": f"bytes={offset}-"} if offset else {})
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
            if offset and (response.status_code == 416 or response.status_code == 206
                           and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-")):
                part.unlink()  # a stale or foreign .part: ask again for the whole file (no Range)
                return _resume(url, output_file, _pooch, item=item, part=part, timeout=timeout, progress=progress)
            response.raise_for_status()
            if offset and response.status_code != 206:
                offset = 0
                if progress:
                    print(f"{item.key}: server does not support resuming, restarting", file=sys.stderr)
            limit, too_long = item.size if item.size is not None else MAX_UNSIZED_BYTES, False
            # Closed (so flushed) when the connection breaks: the next run resumes from what is in it.
            with open(part, "ab" if offset else "wb") as fh, tqdm(
                    total=item.size, initial=offset, desc=item.key, unit="B", unit_scale=True, unit_divisor=1024,
                    file=sys.stderr, disable=not progress) as bar:
                for chunk in response.iter_content(_CHUNK):
                    too_long = offset + len(chunk) > limit
                    if too_long:
                        break
                    fh.write(chunk)
                    offset += len(chunk)
                    bar.update(len(chunk))
        if too_long or (item.size is not None and offset != item.size):
            part.unlink()
            told = (f"no size and the server sent more than {MAX_UNSIZED_BYTES} bytes (proformer.download."
                    "MAX_UNSIZED_BYTES)" if item.size is None else
                    f"{item.size} bytes and the server sent {'more' if too_long else offset}")
            raise DownloadError(f"size mismatch for {item.key}: the record gives {told} (from {url}). The partial "
                                "file was deleted; re-run to download it again, or check the record and the server.")
    os.replace(part, output_file)


def _reason(err: BaseException) -> str:
    """The innermost message of a requests error (it wraps the HTTP layer's, which wraps the socket's)."""
    if isinstance(err, requests.HTTPError) and err.response is not None:
        return f"HTTP {err.response.status_code} {err.response.reason}"
    inner = getattr(err, "reason", None) or (err.args[0] if err.args else "")
    return _reason(inner) if isinstance(inner, BaseException) else str(inner or err)


def _note(fname: str, action: str, _pooch: Any, *, item: RemoteFile, progress: bool) -> str:
    """pooch processor: say on stderr when a file was already present (and verified), so not fetched."""
    if progress and action == "fetch":
        print(f"{item.key}: already present{' with the right checksum' if item.checksum else ''}, skipped",
              file=sys.stderr)
    return fname


def _check_local_names(selected: list[RemoteFile], out: Path, record: str) -> None:
    """Refuse, before anything is written, a file whose local name the download cannot use:
    one that is, or would be overwritten by, the download's own files (the record metadata,
    its ``.tmp``, another file's ``.part``), or one too long for the file system."""
    own = {RECORD_FILENAME: "the record metadata file", RECORD_FILENAME + _TMP_SUFFIX: "its temporary file"}
    try:
        limit = int(os.pathconf(out, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):
        limit = None  # a system that cannot say: a name too long then fails when written, naming it
    for item in selected:
        why = own.get(item.key)
        if why is None and item.key.endswith(PART_SUFFIX):
            why = "a partial download (the download keeps an unfinished file as NAME.part)"
        if why is not None:
            raise DownloadError(
                f"file {item.key!r} of Zenodo record {record} has the name of {why}, so the two would overwrite "
                "each other; leave it out with files=[...] (--files) or download it by hand")
        if limit is not None and len(os.fsencode(item.key + PART_SUFFIX)) > limit:
            raise DownloadError(
                f"file name {item.key[:60]!r}... of Zenodo record {record} is {len(os.fsencode(item.key))} bytes "
                f"long; with {PART_SUFFIX!r} it exceeds the {limit} bytes the file system of {out} allows. "
                "Leave it out with files=[...] (--files) or download it by hand")


def _write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + _TMP_SUFFIX)
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
