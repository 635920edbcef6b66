"""Connected-digit construction: deterministic, exact audio, durations add up."""

import numpy as np
import pytest
import soundfile as sf
from lhotse.cut import PaddingCut

from asrdistill.data.connected_digits import ConnectedDigitsConfig, build_connected_digits, source_takes
from asrdistill.data.fsdd import FsddConfig, prepare_fsdd


@pytest.fixture(scope="module")
def takes(fsdd_subset, tmp_path_factory):
    cuts = prepare_fsdd(fsdd_subset, tmp_path_factory.mktemp("m"), FsddConfig(utterances_per_speaker=0))
    by_speaker = {}
    for split in cuts.values():
        for c in split:
            by_speaker.setdefault(c.supervisions[0].speaker, []).append(c)
    return by_speaker


CFG = ConnectedDigitsConfig(utterances_per_speaker=15)


def test_deterministic_and_seeded(takes):
    a = build_connected_digits(takes, CFG, seed=3, sampling_rate=8000)
    b = build_connected_digits(takes, CFG, seed=3, sampling_rate=8000)
    c = build_connected_digits(takes, CFG, seed=4, sampling_rate=8000)
    assert [x.to_dict() for x in a] == [x.to_dict() for x in b]
    assert [x.id for x in a] != [x.id for x in c]
    # per-speaker seeding: dropping a speaker leaves the others' utterances unchanged
    fewer = {k: v for k, v in takes.items() if k != "george"}
    d = build_connected_digits(fewer, CFG, seed=3, sampling_rate=8000)
    assert [x.to_dict() for x in d] == [x.to_dict() for x in a if not x.id.startswith("george")]


def test_digit_counts_and_distinct_takes(takes):
    cuts = build_connected_digits(takes, CFG, seed=0, sampling_rate=8000)
    assert len(cuts) == 15 * len(takes)
    counts = [len(source_takes(c)) for c in cuts]
    assert min(counts) >= 2 and max(counts) <= 7 and len(set(counts)) > 3
    for c in cuts:
        src = source_takes(c)
        assert len(set(src)) == len(src)
        assert {t.split("_")[1] for t in src} == {c.id.split("-")[0]}


def test_durations_add_up_and_audio_is_exact_concatenation(takes, fsdd_dir):
    cuts = build_connected_digits(takes, CFG, seed=0, sampling_rate=8000)[:10]
    for c in cuts:
        speech = [t for t in c.tracks if not isinstance(t.cut, PaddingCut)]
        pad = [t for t in c.tracks if isinstance(t.cut, PaddingCut)]
        pauses = [speech[i + 1].offset - (speech[i].offset + speech[i].cut.duration) for i in range(len(speech) - 1)]
        assert all(CFG.min_pause - 1e-9 <= p <= CFG.max_pause + 1e-9 for p in pauses)
        lead = speech[0].offset
        trail = pad[0].cut.duration if pad else 0.0
        total = lead + sum(t.cut.duration for t in speech) + sum(pauses) + trail
        assert c.duration == pytest.approx(total, abs=1e-9)
        audio = c.load_audio()[0]
        assert audio.shape[0] == round(total * 8000)
        expected = np.zeros_like(audio)
        for t in speech:
            x, _ = sf.read(fsdd_dir / "recordings" / f"{t.cut.id}.wav", dtype="float32")
            start = round(t.offset * 8000)
            expected[start : start + len(x)] = x
        np.testing.assert_array_equal(audio, expected)
