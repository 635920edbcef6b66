"""Connected-digit construction: deterministic, exact audio, durations add up, recorded non-speech between words."""

import dataclasses
import re

import numpy as np
import pytest
import soundfile as sf
from lhotse.cut import PaddingCut

from asrdistill.data.connected_digits import (
    NONSPEECH_KIND,
    ConnectedDigitsConfig,
    build_connected_digits,
    is_filler,
    source_takes,
    speaker_bank,
)
from asrdistill.data.fsdd import FsddConfig, prepare_fsdd
from asrdistill.data.nonspeech import MAX_ZERO_RUN, frame_energy_db, nonspeech_bank, zero_run_frames


@pytest.fixture(scope="module")
def takes(fsdd_subset, tmp_path_factory):
    cuts = prepare_fsdd(fsdd_subset, tmp_path_factory.mktemp("m"), FsddConfig(utterances_per_speaker=0))
    by_speaker = {}
    for split in cuts.values():
        for c in split:
            by_speaker.setdefault(c.supervisions[0].speaker, []).append(c)
    return by_speaker


CFG = ConnectedDigitsConfig(utterances_per_speaker=15)
ZEROS = dataclasses.replace(CFG, pause_fill="zeros")


@pytest.fixture(scope="module")
def filled(takes):
    return build_connected_digits(takes, CFG, seed=0, sampling_rate=8000)


@pytest.fixture(scope="module")
def zeroed(takes):
    return build_connected_digits(takes, ZEROS, seed=0, sampling_rate=8000)


def _longest_zero_run(x: np.ndarray) -> int:
    d = np.diff(np.concatenate(([0], (x == 0).astype(np.int8), [0])))
    runs = np.flatnonzero(d == -1) - np.flatnonzero(d == 1)
    return int(runs.max()) if runs.size else 0


def _samples(cut, fsdd_dir):
    """The recorded samples a track cut stands for (read straight from the wav file)."""
    x, _ = sf.read(fsdd_dir / "recordings" / f"{cut.recording.id}.wav", dtype="float32")
    start = round(cut.start * 8000)
    return x[start : start + cut.num_samples]


def test_deterministic_and_seeded(takes, filled):
    b = build_connected_digits(takes, CFG, seed=0, sampling_rate=8000)
    c = build_connected_digits(takes, CFG, seed=4, sampling_rate=8000)
    assert [x.to_dict() for x in filled] == [x.to_dict() for x in b]
    assert [x.id for x in filled] != [x.id for x in c]
    np.testing.assert_array_equal(filled[3].load_audio(), b[3].load_audio())
    # per-speaker seeding: dropping a speaker leaves the others' utterances (fillers included) unchanged
    fewer = {k: v for k, v in takes.items() if k != "george"}
    d = build_connected_digits(fewer, CFG, seed=0, sampling_rate=8000)
    assert [x.to_dict() for x in d] == [x.to_dict() for x in filled if not x.id.startswith("george")]


def test_digit_counts_and_distinct_takes(takes, filled):
    assert len(filled) == 15 * len(takes)
    counts = [len(source_takes(c)) for c in filled]
    assert min(counts) >= 2 and max(counts) <= 7 and len(set(counts)) > 3
    for c in filled:
        src = source_takes(c)
        assert len(set(src)) == len(src)
        assert {t.split("_")[1] for t in src} == {c.id.split("-")[0]}


def test_zeros_mode_durations_add_up_and_audio_is_exact_concatenation(zeroed, fsdd_dir):
    for c in zeroed[:10]:
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


def test_same_words_takes_and_times_as_zeros_mode(filled, zeroed):
    assert [c.id for c in filled] == [c.id for c in zeroed]
    for a, b in zip(filled, zeroed):
        assert a.num_samples == b.num_samples
        assert source_takes(a) == source_takes(b)
        assert all(re.fullmatch(rf"\d_{a.id.split('-')[0]}_\d+", t) for t in source_takes(a))
        words = lambda c: [(s.id, s.start, s.duration, s.text, s.speaker) for s in c.supervisions]  # noqa: E731
        assert words(a) == words(b)
        offsets = lambda c: [(t.cut.id, t.offset) for t in c.tracks if not is_filler(t.cut)]  # noqa: E731
        assert offsets(a) == offsets(b)
        # the digit takes come first (later stages take the utterance's metadata from the first track)
        n = len(source_takes(a))
        assert not any(is_filler(t.cut) for t in a.tracks[:n]) and all(is_filler(t.cut) for t in a.tracks[n:])
        assert not any(isinstance(t.cut, PaddingCut) for t in a.tracks)
        for t in a.tracks[n:]:
            assert t.cut.supervisions == [] and t.cut.custom["kind"] == NONSPEECH_KIND
            assert t.cut.id.startswith("nonspeech-") and t.cut.recording.id.split("_")[1] == a.id.split("-")[0]


def test_nonspeech_fill_is_recorded_audio_everywhere(filled, fsdd_dir):
    for c in filled[::4]:
        audio = c.load_audio()[0]
        assert audio.shape[0] == c.num_samples
        expected = np.full(audio.shape, np.nan, dtype=np.float32)
        filler = np.zeros(audio.shape, dtype=bool)
        source_run = 0
        for t in c.tracks:
            start = round(t.offset * 8000)
            x = _samples(t.cut, fsdd_dir)
            assert x.shape[0] == t.cut.num_samples
            assert np.isnan(expected[start : start + x.shape[0]]).all(), f"{c.id}: tracks overlap"
            expected[start : start + x.shape[0]] = x
            if is_filler(t.cut):
                filler[start : start + x.shape[0]] = True
            else:
                source_run = max(source_run, _longest_zero_run(x))
        assert not np.isnan(expected).any(), f"{c.id}: a gap is left unfilled"
        np.testing.assert_array_equal(audio, expected)
        # no digital zero: no exact-zero run longer than a few samples (or than the takes' own)
        assert _longest_zero_run(audio[filler]) <= MAX_ZERO_RUN
        assert _longest_zero_run(audio) <= max(MAX_ZERO_RUN, source_run)
        assert filler.sum() >= round(CFG.min_pause * 8000) * (len(source_takes(c)) - 1)


def test_filler_level_is_the_speakers_recorded_nonspeech(takes, filled, zeroed):
    for speaker in ("george", "theo", "yweweler"):
        bank = speaker_bank(speaker, sorted(takes[speaker], key=lambda t: t.id), CFG)
        peaks = [frame_energy_db(t.load_audio()[0], 80).max() for t in takes[speaker]]
        speech_level = float(np.median(peaks))
        assert bank.frame_db_max < speech_level - 10
        for c, z in zip(filled, zeroed):
            if not c.id.startswith(speaker + "-"):
                continue
            audio, silent = c.load_audio()[0], z.load_audio()[0]
            for t in c.tracks:
                if not is_filler(t.cut):
                    continue
                start = round(t.offset * 8000)
                x = audio[start : start + t.cut.num_samples].astype(np.float64)
                db = 10 * np.log10(np.mean(x * x) + 1e-10)
                if x.shape[0] >= 160:
                    assert bank.frame_db_min - 3 <= db <= bank.frame_db_max + 3, (c.id, t.cut.id, db)
                assert db > -95 and db < speech_level - 10
                assert not silent[start : start + t.cut.num_samples].any()  # zeros mode: digital zero there


def test_speaker_without_nonspeech_is_an_error(takes):
    one = {"george": takes["george"]}
    strict = dataclasses.replace(CFG, nonspeech_peak_db=500.0)
    with pytest.raises(ValueError, match="george.*pause_fill='zeros'"):
        build_connected_digits(one, strict, seed=0, sampling_rate=8000)
    assert len(build_connected_digits(one, dataclasses.replace(strict, pause_fill="zeros"), 0, 8000)) == 15
    with pytest.raises(ValueError, match="pause_fill"):
        build_connected_digits(one, dataclasses.replace(CFG, pause_fill="noise"), 0, 8000)


def test_nonspeech_bank_on_synthetic_takes():
    rng = np.random.default_rng(0)
    sr = 8000
    noise = lambda n: (rng.standard_normal(n) * 1e-3).astype(np.float32)  # noqa: E731  -60 dB
    speech = (0.3 * np.sin(np.arange(2400) * 0.3)).astype(np.float32)
    a = np.concatenate([noise(400), speech, noise(800)])  # 50 ms lead, 100 ms trail
    b = np.concatenate([noise(400), speech, noise(800)])
    b[80:100] = 0.0  # a run of digital zero in frame 1 of the lead
    c = np.concatenate([speech, noise(40)])  # trail shorter than two frames + guard: nothing kept
    bank = nonspeech_bank("x", [a, b, c], sr)
    segments = list(zip(bank.take_index.tolist(), bank.start.tolist(), bank.length.tolist()))
    # lead: frames 0-4 minus one guard frame; trail: the 10 frames after the speech minus the guard
    assert segments == [(0, 0, 320), (0, 2880, 720), (1, 160, 160), (1, 2880, 720)]
    assert -65 < bank.frame_db_min <= bank.frame_db_max < -55
    assert zero_run_frames(b, 80).tolist()[:3] == [False, True, False]
