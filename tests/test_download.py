"""Tests of :mod:`proformer.download`."""

from __future__ import annotations

import hashlib
import http.server
import json
import random
import re
import socket
import threading
from pathlib import Path

import pytest

from proformer import download
from proformer.download import DownloadError, download_dream2022, record_files

RECORD = "10633252"


def _make_files() -> dict[str, bytes]:
    """A few KB of reproducible bytes per file, different for each file."""
    rng = random.Random(2022)
    return {
        "train_sequences.txt": bytes(rng.randrange(256) for _ in range(5000)),
        "test_sequences.txt": bytes(rng.randrange(256) for _ in range(3001)),
        "sample_submission.json": b'{"0": 1.0}\n' * 300,
    }


class FakeZenodo:
    """State shared between a test and the request handler."""

    def __init__(self) -> None:
        self.files = _make_files()
        self.body_override: dict[str, bytes] = {}  # served instead of the listed bytes
        self.checksum_override: dict[str, str] = {}  # listed instead of the files' md5
        self.cut_after: dict[str, int] = {}  # drop the connection after this many bytes
        self.ignore_range = False  # answer 200 with the whole file
        self.refuse_range = False  # answer 416 to any Range request
        self.entries_variant = False  # InvenioRDM shape: files = {"entries": [...]}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.base_url = ""  # set once the server is bound

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/records/"

    def file_gets(self, key: str) -> list[dict[str, str]]:
        """Headers of the requests made for ``key``'s content."""
        return [h for path, h in self.requests if path == f"/files/{key}/content"]

    def record(self) -> dict:
        """The record JSON, with checksums of the *listed* bytes (not the overrides)."""
        entries = []
        for key, data in self.files.items():
            url = f"{self.base_url}/files/{key}/content"
            entry = {"key": key, "size": len(data), "checksum": self.checksum_override.get(key, f"md5:{_md5(data)}")}
            if self.entries_variant:
                entry["links"] = {"self": f"{self.api_url}{RECORD}/files/{key}", "content": url}
            else:
                entry["links"] = {"self": url}
            entries.append(entry)
        files = {"enabled": True, "entries": entries} if self.entries_variant else entries
        return {"id": int(RECORD), "metadata": {"title": "DREAM 2022 (test)"}, "files": files}


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _handler(site: FakeZenodo) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            site.requests.append((self.path, dict(self.headers)))
            if self.path == f"/api/records/{RECORD}":
                self._send(200, json.dumps(site.record()).encode(), "application/json")
                return
            key = self.path.removeprefix("/files/").removesuffix("/content")
            if key not in site.files:
                self._send(404, b"not found", "text/plain")
                return
            data = site.body_override.get(key, site.files[key])
            self._serve_file(key, data)

        def _serve_file(self, key: str, data: bytes) -> None:
            wanted = self.headers.get("Range")
            start = 0
            if wanted and not site.ignore_range:
                start = int(wanted.removeprefix("bytes=").split("-")[0])
                if site.refuse_range or start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if key in site.cut_after:
                # Promise the whole body, send part of it, hang up: a broken download.
                self.wfile.write(body[: site.cut_after.pop(key)])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def site():
    """A fresh fake Zenodo on 127.0.0.1 (random free port), shut down after the test."""
    state = FakeZenodo()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _get(site: FakeZenodo, out: Path, **kwargs) -> list[Path]:
    kwargs.setdefault("progress", False)
    return download_dream2022(out, api_url=site.api_url, timeout=5, **kwargs)


def _strip(fake: FakeZenodo, key: str, *fields: str) -> None:
    """Serve the record with ``fields`` left out of ``key``'s entry."""
    original = fake.record

    def record() -> dict:
        data = original()
        for entry in data["files"]:
            if entry["key"] == key:
                for name in fields:
                    entry.pop(name, None)
        return data

    fake.record = record


def _fetch(fake: FakeZenodo, out: Path, **kwargs):
    return download_dream2022(out, api_url=fake.api_url, timeout=5, progress=False, **kwargs)


@pytest.mark.parametrize("variant", [False, True], ids=["files-list", "files-entries"])
def test_full_download(site: FakeZenodo, tmp_path: Path, variant: bool) -> None:
    site.entries_variant = variant
    paths = _get(site, tmp_path / "dream")

    assert [p.name for p in paths] == list(site.files)
    for path in paths:
        assert path.read_bytes() == site.files[path.name]
    # Nothing else is left behind: no .part, no pooch temporary file, no .tmp of the record.
    assert sorted(p.name for p in (tmp_path / "dream").iterdir()) == sorted([*site.files, "zenodo_record.json"])
    saved = json.loads((tmp_path / "dream" / "zenodo_record.json").read_text())
    assert saved == site.record()
    # The API was asked for JSON, and no Range header was sent for fresh downloads.
    assert site.requests[0][0] == f"/api/records/{RECORD}"
    assert all("Range" not in site.file_gets(key)[0] for key in site.files)


def test_resume_from_part_file(site: FakeZenodo, tmp_path: Path) -> None:
    key = "train_sequences.txt"
    data = site.files[key]
    half = len(data) // 2
    (tmp_path / f"{key}.part").write_bytes(data[:half])

    paths = _get(site, tmp_path, files=[key])

    assert paths == [tmp_path / key]
    assert paths[0].read_bytes() == data
    assert not (tmp_path / f"{key}.part").exists()
    (headers,) = site.file_gets(key)
    assert headers["Range"] == f"bytes={half}-"


def test_resume_after_broken_connection(site: FakeZenodo, tmp_path: Path, monkeypatch) -> None:
    key = "test_sequences.txt"
    # requests hands over whole chunks only, so the cut comes after two whole 500-byte chunks.
    monkeypatch.setattr(download, "_CHUNK", 500)
    site.cut_after[key] = 1000

    with pytest.raises(DownloadError) as info:
        _get(site, tmp_path, files=[key])
    message = str(info.value)
    assert message.startswith(f"could not download {key} from {site.base_url}/files/{key}/content")
    assert f"1000 bytes are kept in {tmp_path / (key + '.part')} and a re-run resumes" in message
    assert (tmp_path / f"{key}.part").read_bytes() == site.files[key][:1000]
    assert not (tmp_path / key).exists()

    _get(site, tmp_path, files=[key])  # the re-run the message suggests
    assert (tmp_path / key).read_bytes() == site.files[key]
    assert site.file_gets(key)[-1]["Range"] == "bytes=1000-"
    assert not (tmp_path / f"{key}.part").exists()


def test_server_ignoring_range_restarts(site: FakeZenodo, tmp_path: Path, capsys) -> None:
    key = "train_sequences.txt"
    data = site.files[key]
    site.ignore_range = True
    # A .part that is not a prefix of the file: had the 200 answer been appended to it, the
    # checksum would fail, so a correct result proves the download started over.
    (tmp_path / f"{key}.part").write_bytes(b"x" * 100)

    _get(site, tmp_path, files=[key], progress=True)

    assert (tmp_path / key).read_bytes() == data
    assert site.file_gets(key)[0]["Range"] == "bytes=100-"
    assert "restarting" in capsys.readouterr().err


def test_range_refused_restarts(site: FakeZenodo, tmp_path: Path) -> None:
    key = "train_sequences.txt"
    site.refuse_range = True
    (tmp_path / f"{key}.part").write_bytes(site.files[key][:10])

    _get(site, tmp_path, files=[key])

    assert (tmp_path / key).read_bytes() == site.files[key]
    first, second = site.file_gets(key)
    assert first["Range"] == "bytes=10-" and "Range" not in second


def test_complete_part_file_needs_no_request(site: FakeZenodo, tmp_path: Path) -> None:
    key = "train_sequences.txt"
    (tmp_path / f"{key}.part").write_bytes(site.files[key])

    _get(site, tmp_path, files=[key])

    assert (tmp_path / key).read_bytes() == site.files[key]
    assert site.file_gets(key) == []


def test_complete_file_is_skipped(site: FakeZenodo, tmp_path: Path, capsys) -> None:
    key = "test_sequences.txt"
    (tmp_path / key).write_bytes(site.files[key])

    paths = _get(site, tmp_path, progress=True)

    assert len(paths) == 3 and all(p.read_bytes() == site.files[p.name] for p in paths)
    assert site.file_gets(key) == []
    assert all(len(site.file_gets(other)) == 1 for other in site.files if other != key)
    err = capsys.readouterr().err
    assert f"{key}: already present with the right checksum, skipped" in err


def test_progress_bar_on_stderr_and_off(site: FakeZenodo, tmp_path: Path, capsys) -> None:
    _get(site, tmp_path / "on", progress=True)
    captured = capsys.readouterr()
    # One tqdm bar per file, named by it and run to the end.
    for key in site.files:
        assert f"{key}: 100%" in captured.err
    assert captured.out == ""

    _get(site, tmp_path / "off", progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""  # no bar, and no pooch log lines either


def test_differing_file_is_downloaded_again(site: FakeZenodo, tmp_path: Path) -> None:
    key = "test_sequences.txt"
    (tmp_path / key).write_bytes(b"stale")

    _get(site, tmp_path, files=[key])

    assert (tmp_path / key).read_bytes() == site.files[key]
    assert len(site.file_gets(key)) == 1


@pytest.mark.parametrize("where", ["record", "server"], ids=["wrong-md5-listed", "wrong-bytes-served"])
def test_checksum_mismatch(site: FakeZenodo, tmp_path: Path, where: str) -> None:
    key = "train_sequences.txt"
    good = site.files[key]
    bad = bytes(b ^ 0xFF for b in good)  # same size, other content
    if where == "record":
        expected, received = _md5(bad), _md5(good)
        site.checksum_override[key] = f"md5:{expected}"
    else:
        expected, received = _md5(good), _md5(bad)
        site.body_override[key] = bad

    with pytest.raises(DownloadError) as info:
        _get(site, tmp_path, files=[key])

    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"checksum mismatch for {key}: expected md5:{expected}, got md5:{received}")
    assert "re-run" in message
    # Nothing at the target name, no .part, no pooch temporary file: only the record JSON.
    assert [p.name for p in tmp_path.iterdir()] == ["zenodo_record.json"]


def test_size_mismatch(site: FakeZenodo, tmp_path: Path) -> None:
    key = "sample_submission.json"
    site.body_override[key] = site.files[key] + b"extra"

    with pytest.raises(DownloadError, match=rf"size mismatch for {key}.*re-run"):
        _get(site, tmp_path, files=[key])
    assert not (tmp_path / key).exists() and not (tmp_path / f"{key}.part").exists()


def test_file_selection(site: FakeZenodo, tmp_path: Path) -> None:
    wanted = ["sample_submission.json", "train_sequences.txt"]
    paths = _get(site, tmp_path, files=wanted)

    assert paths == [tmp_path / key for key in wanted]  # the order asked for
    assert not (tmp_path / "test_sequences.txt").exists()
    assert site.file_gets("test_sequences.txt") == []
    # A single name given as a plain string works too.
    assert _get(site, tmp_path, files="test_sequences.txt") == [tmp_path / "test_sequences.txt"]


def test_unknown_key(site: FakeZenodo, tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        _get(site, tmp_path, files=["train_sequences.txt", "nope.txt"])
    message = str(info.value)
    assert "nope.txt" in message
    assert all(key in message for key in site.files)  # lists what is available
    assert all(not site.file_gets(key) for key in site.files)  # nothing was downloaded


def test_unreachable_server(tmp_path: Path) -> None:
    # Bind then release a loopback port so that nothing listens on it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api_url = f"http://127.0.0.1:{port}/api/records/"

    with pytest.raises(DownloadError) as info:
        download_dream2022(tmp_path, api_url=api_url, progress=False, timeout=5)
    message = str(info.value)
    assert f"{api_url}{RECORD}" in message and "re-run" in message


def test_missing_record(site: FakeZenodo, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"/api/records/999: HTTP 404"):
        _get(site, tmp_path, record="999")


def test_record_files_rejects_unsafe_names() -> None:
    bad = {"files": [{"key": "../evil.txt", "size": 1, "links": {"self": "http://127.0.0.1/x"}}]}
    with pytest.raises(DownloadError, match="unusable file name"):
        record_files(bad)


def test_record_files_entries_dict_and_bare_checksum() -> None:
    digest = "0" * 64
    meta = {"files": {"entries": {"a b.txt": {"size": 3, "checksum": digest}}}}
    (item,) = record_files(meta, record="10.5281/zenodo.42", api_url="http://127.0.0.1/api/")
    assert (item.key, item.size, item.checksum) == ("a b.txt", 3, f"sha256:{digest}")
    assert item.url == "http://127.0.0.1/api/42/files/a%20b.txt/content"


def test_download_without_a_size_is_bounded(site, tmp_path, monkeypatch):  # noqa: F811 - the imported fixture
    key = "train_sequences.txt"  # 5,000 bytes
    _strip(site, key, "size")
    monkeypatch.setattr(download, "MAX_UNSIZED_BYTES", 1000, raising=False)
    with pytest.raises(DownloadError, match=rf"{key}.*gives no size and the server sent more than"):
        _fetch(site, tmp_path, files=[key])
    assert not (tmp_path / key).exists() and not (tmp_path / f"{key}.part").exists()
    monkeypatch.setattr(download, "MAX_UNSIZED_BYTES", 10_000, raising=False)
    assert _fetch(site, tmp_path, files=[key])[0].read_bytes() == site.files[key]


def test_download_of_a_sized_file_stops_at_its_size(site, tmp_path):  # noqa: F811 - the imported fixture
    key = "test_sequences.txt"
    site.body_override[key] = site.files[key] * 50  # a server that sends far more than listed
    _strip(site, key, "checksum")
    with pytest.warns(UserWarning, match="no checksum"), pytest.raises(DownloadError, match=rf"size mismatch for {key}"):
        _fetch(site, tmp_path, files=[key])
    assert not (tmp_path / f"{key}.part").exists()


def test_download_warns_when_a_file_has_no_checksum(site, tmp_path):  # noqa: F811 - the imported fixture
    key = "sample_submission.json"
    _strip(site, key, "checksum")
    with pytest.warns(UserWarning, match=rf"{key}: the Zenodo record gives no checksum"):
        paths = _fetch(site, tmp_path)
    assert [p.read_bytes() for p in paths] == list(site.files.values())


@pytest.mark.parametrize("key", ["zenodo_record.json", "zenodo_record.json.tmp", "test_sequences.txt.part"])
def test_download_refuses_a_file_named_like_its_own_files(site, tmp_path, key):  # noqa: F811 - the imported fixture
    site.files[key] = b"not the record"
    with pytest.raises(DownloadError, match=rf"file '{re.escape(key)}' of Zenodo record \d+ has the name of"):
        _fetch(site, tmp_path)
    assert not (tmp_path / "zenodo_record.json").exists()  # refused before anything is written
    others = [name for name in site.files if name != key]
    _fetch(site, tmp_path, files=others)  # leaving it out works
    assert json.loads((tmp_path / "zenodo_record.json").read_text())["id"] == int(RECORD)


def test_download_refuses_a_too_long_file_name_clearly(site, tmp_path):  # noqa: F811 - the imported fixture
    key = "x" * 300 + ".txt"
    site.files[key] = b"long"
    with pytest.raises(DownloadError, match=r"is 304 bytes long; with '.part' it exceeds the \d+ bytes"):
        _fetch(site, tmp_path)
    with pytest.raises(DownloadError, match=r"exceeds"):
        _fetch(site, tmp_path, files=[key])


def test_download_refuses_a_record_listing_a_file_twice():
    entry = {"key": "a.txt", "size": 1, "links": {"self": "http://x/a"}}
    with pytest.raises(DownloadError, match="lists the file 'a.txt' twice"):
        download.record_files({"files": [entry, dict(entry)]})
