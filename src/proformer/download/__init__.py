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

Only the standard library is used (:mod:`urllib`, :mod:`hashlib`, :mod:`json`). The parts:
:mod:`proformer.download.record` reads the record's file list (no network);
:mod:`proformer.download.transfer` does the HTTP requests, resuming and verification; this
module puts them together into a directory.

Example
-------
>>> from proformer.download import download_dream2022
>>> paths = download_dream2022("data/dream2022")                       # doctest: +SKIP
>>> paths = download_dream2022("data", files=["test_sequences.txt"])   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Optional, Union

from .record import (
    DREAM2022_RECORD,
    ZENODO_API_URL,
    DownloadError,
    RemoteFile,
    parse_record_id,
    record_files,
    select_files,
)
from .transfer import PART_SUFFIX, download_file, fetch_record

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

#: Name of the record metadata file written next to the downloaded files.
RECORD_FILENAME = "zenodo_record.json"

# The suffix of the record metadata file while it is written.
_TMP_SUFFIX = ".tmp"


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

    record_id = parse_record_id(record)
    metadata = fetch_record(record_id, api_url=api_url, timeout=timeout)
    remote = record_files(metadata, record=record_id, api_url=api_url)
    selected = select_files(remote, files, record_id)
    _check_local_names(selected, out, record_id)

    # Saved before the downloads so that the checksums used for verification are on disk
    # even if a download fails half-way.
    _write_json(out / RECORD_FILENAME, metadata)

    stream = sys.stderr if progress else None
    paths = []
    for item in selected:
        dest = out / item.key
        download_file(item, dest, timeout=timeout, stream=stream)
        paths.append(dest)
    return paths


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
        if why is None and item.key.endswith(PART_SUFFIX):
            why = "the name of a partial download (the download keeps an unfinished file as NAME.part)"
        if why is not None:
            raise DownloadError(
                f"file {item.key!r} of Zenodo record {record} has the name of {why}, so the two "
                "would overwrite each other; leave it out with files=[...] (--files) or download it by hand"
            )
        length = len(os.fsencode(item.key + PART_SUFFIX))
        if length > limit:
            raise DownloadError(
                f"file name {item.key[:60]!r}... of Zenodo record {record} is {len(os.fsencode(item.key))} bytes "
                f"long; with {PART_SUFFIX!r} it exceeds the {limit} bytes the file system of {out} allows. "
                "Leave it out with files=[...] (--files) or download it by hand"
            )


def _write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + _TMP_SUFFIX)
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
