"""The Zenodo record: which record, and the files it lists with their sizes, checksums and links.

No network here: :func:`record_files` reads the record's metadata JSON (as fetched by
:func:`proformer.download.transfer.fetch_record`) into :class:`RemoteFile` entries, refusing
any file name that could leave the output directory, and :func:`select_files` picks the ones
asked for.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Union

__all__ = ["DREAM2022_RECORD", "ZENODO_API_URL", "DownloadError", "RemoteFile", "join_url", "parse_record_id",
           "record_files", "select_files"]

#: Zenodo record id of the DREAM 2022 challenge data (DOI 10.5281/zenodo.10633252).
DREAM2022_RECORD = "10633252"

#: Base URL of the Zenodo records API; the record id is appended to it.
ZENODO_API_URL = "https://zenodo.org/api/records/"


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
        Record JSON, as returned by :func:`proformer.download.transfer.fetch_record`.
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
            url = join_url(api_url, f"{parse_record_id(record)}/files/{urllib.parse.quote(key)}/content")

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


def parse_record_id(record: Union[str, int]) -> str:
    """Return the numeric record id of ``record`` (an id, or a DOI ending in ``zenodo.N``)."""
    text = str(record).strip()
    match = re.fullmatch(r"(?:.*zenodo\.)?(\d+)", text)
    if not match:
        raise ValueError(f"not a Zenodo record id or DOI: {record!r}")
    return match.group(1)


def join_url(base: str, tail: str) -> str:
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


def select_files(
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
