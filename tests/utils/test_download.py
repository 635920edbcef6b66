"""Downloads: file URLs, a local HTTP server that breaks off mid-file, checksums."""

import hashlib
import http.server
import threading
import zipfile

import pytest

from asrdistill.utils.download import DownloadError, download_file, extract_archive

PAYLOAD = bytes(range(256)) * 4000  # 1 MB


class _Handler(http.server.BaseHTTPRequestHandler):
    fail_first = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if _Handler.fail_first:  # send a third of the file, then drop the connection
            _Handler.fail_first = False
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    _Handler.fail_first = True
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/data.bin"
    httpd.shutdown()


def test_interrupted_download_resumes(server, tmp_path):
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match="run again to resume"):
        download_file(server, dest, progress=False, timeout=5)
    assert not dest.exists()
    part = tmp_path / "data.bin.part"
    assert 0 < part.stat().st_size < len(PAYLOAD)
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    download_file(server, dest, expected_size=len(PAYLOAD), sha256=sha, progress=False, timeout=5)
    assert dest.read_bytes() == PAYLOAD and not part.exists()


def test_file_url_checksum_and_extract(tmp_path):
    src = tmp_path / "src"
    (src / "fsdd-master" / "recordings").mkdir(parents=True)
    (src / "fsdd-master" / "recordings" / "0_a_0.wav").write_bytes(b"x")
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(src / "fsdd-master" / "recordings" / "0_a_0.wav", "fsdd-master/recordings/0_a_0.wav")
    dest = download_file(archive.as_uri(), tmp_path / "dl" / "a.zip", progress=False)
    assert dest.read_bytes() == archive.read_bytes()
    with pytest.raises(DownloadError, match="sha256"):
        download_file(archive.as_uri(), tmp_path / "dl2" / "a.zip", sha256="0" * 64, progress=False)
    assert not (tmp_path / "dl2" / "a.zip").exists()
    out = extract_archive(dest, tmp_path / "corpus")
    assert (out / "fsdd-master" / "recordings" / "0_a_0.wav").read_bytes() == b"x"


def test_download_fsdd_from_local_mirror(fsdd_dir, tmp_path):
    from asrdistill.data.fsdd import download_fsdd

    archive = tmp_path / "mirror.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted((fsdd_dir / "recordings").glob("*_theo_1*.wav")):
            z.write(p, f"free-spoken-digit-dataset-master/recordings/{p.name}")
    corpus = download_fsdd(tmp_path / "dl", url=archive.as_uri())
    assert (corpus / "recordings" / "3_theo_1.wav").exists()
