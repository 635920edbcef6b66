"""LibriSpeech preparation and download on a miniature corpus in the real layout, built from FSDD takes."""

import http.server
import shutil
import tarfile
import threading
from functools import partial

import numpy as np
import pytest
import soundfile as sf
import torch

from asrdistill.utils.readers import read_cuts
from asrdistill.data.librispeech import LibriSpeechConfig, download_librispeech, download_resources, prepare_librispeech
from asrdistill.utils.download import DownloadError

WORDS = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()
#: FSDD speaker -> (LibriSpeech part, speaker id, chapter id)
LAYOUT = {"george": ("train-clean-100", 19, 198), "jackson": ("train-clean-100", 26, 495),
          "yweweler": ("train-clean-100", 32, 21631),
          "nicolas": ("dev-clean", 84, 121), "theo": ("test-clean", 121, 127)}


def upsample_2x(x: np.ndarray) -> np.ndarray:
    """8 kHz -> 16 kHz by band-limited (FFT) interpolation."""
    return (torch.fft.irfft(torch.fft.rfft(torch.from_numpy(x).double()), n=2 * len(x)) * 2).numpy()


def build_mini_librispeech(fsdd_dir, root, utts_per_speaker=6, seed=0):
    """``root/LibriSpeech/{part}/{spk}/{chapter}/`` with 16 kHz FLAC utterances of 1-3 digits and trans.txt."""
    rng = np.random.default_rng(seed)
    expected = {}
    for name, (part, spk, chapter) in LAYOUT.items():
        d = root / "LibriSpeech" / part / str(spk) / str(chapter)
        d.mkdir(parents=True)
        lines = []
        for u in range(utts_per_speaker):
            digits = rng.integers(0, 10, size=int(rng.integers(1, 4)))
            audio = np.concatenate([sf.read(fsdd_dir / "recordings" / f"{k}_{name}_{int(rng.integers(0, 50))}.wav")[0]
                                    for k in digits])
            uid = f"{spk}-{chapter}-{u:04d}"
            sf.write(d / f"{uid}.flac", upsample_2x(audio).astype(np.float32), 16000)
            text = " ".join(WORDS[k] for k in digits)
            lines.append(f"{uid} {text}")
            expected[uid] = (part, text, 2 * len(audio))
        (d / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return root / "LibriSpeech", expected


@pytest.fixture(scope="module")
def mini(fsdd_dir, tmp_path_factory):
    return build_mini_librispeech(fsdd_dir, tmp_path_factory.mktemp("ls"))


def test_prepare_writes_the_splits_with_real_audio(mini, tmp_path):
    corpus, expected = mini
    cuts = prepare_librispeech(corpus, tmp_path, LibriSpeechConfig(extra_parts=(), num_jobs=1))
    assert sorted(cuts) == ["dev", "test", "train"]
    parts = {"train": "train-clean-100", "dev": "dev-clean", "test": "test-clean"}
    for split, part in parts.items():
        on_disk = read_cuts(tmp_path / f"librispeech_cuts_{split}.jsonl.gz")
        ids = {u for u, (p, _, _) in expected.items() if p == part}
        assert set(on_disk.ids) == ids
        for c in on_disk:
            _, text, n = expected[c.id]
            assert c.supervisions[0].text == text and c.sampling_rate == 16000 and c.num_samples == n
            assert c.load_audio().shape == (1, n)
    assert (tmp_path / "prepare_config.yaml").exists()


def test_prepare_names_what_is_missing(mini, tmp_path):
    corpus, _ = mini
    with pytest.raises(FileNotFoundError, match="dev-other"):
        prepare_librispeech(corpus, tmp_path, LibriSpeechConfig(extra_parts=("dev-other",), num_jobs=1))
    with pytest.raises(ValueError, match="unknown LibriSpeech part"):
        prepare_librispeech(corpus, tmp_path, LibriSpeechConfig(train_parts=("train-clean-5",), num_jobs=1))


class _DropFirst(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; the first request for dev-clean.tar.gz breaks off after a third of the file."""

    dropped = set()

    def log_message(self, *args):
        pass

    def send_head(self):
        f = super().send_head()
        if f is not None and self.path.endswith("dev-clean.tar.gz") and self.path not in _DropFirst.dropped:
            _DropFirst.dropped.add(self.path)
            data = f.read()
            self.wfile.write(data[: len(data) // 3])
            self.wfile.flush()
            self.connection.shutdown(2)
            f.close()
            return None
        return f


def test_download_resumes_an_interrupted_part_and_unpacks_it(mini, tmp_path):
    corpus, expected = mini
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for part in ("dev-clean", "test-clean"):  # each archive holds LibriSpeech/{part}
        with tarfile.open(mirror / f"{part}.tar.gz", "w:gz") as tar:
            tar.add(corpus / part, arcname=f"LibriSpeech/{part}")
    (mirror / "librispeech-lexicon.txt").write_text("ONE W AH1 N\n")
    _DropFirst.dropped = set()
    httpd = http.server.HTTPServer(("127.0.0.1", 0), partial(_DropFirst, directory=str(mirror)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}"
    try:
        with pytest.raises(DownloadError, match="run again to resume"):
            download_librispeech(tmp_path / "dl", ["dev-clean"], base_url=url, progress=False)
        assert not (tmp_path / "dl" / "LibriSpeech").exists()  # nothing half-unpacked
        got = download_librispeech(tmp_path / "dl", ["dev-clean", "test-clean"], base_url=url, progress=False)
        res = download_resources(tmp_path / "dl", ["librispeech-lexicon.txt"], base_url=url, progress=False)
    finally:
        httpd.shutdown()
    for part in ("dev-clean", "test-clean"):  # the second archive merged into LibriSpeech/, the first kept
        flacs = sorted(p.name for p in (got / part).rglob("*.flac"))
        assert flacs == sorted(f"{u}.flac" for u, (p, _, _) in expected.items() if p == part)
    assert res["librispeech-lexicon.txt"].read_text() == "ONE W AH1 N\n"
    # a second call finds everything in place and downloads nothing
    shutil.rmtree(mirror)
    assert download_librispeech(tmp_path / "dl", ["dev-clean", "test-clean"], base_url=url, progress=False) == got
