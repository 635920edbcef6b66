"""Kaldi data directories built from real FSDD audio: import, checks naming ids, --skip-bad, round trip."""

import gzip
import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from asrdistill.cli import cli
from asrdistill.data.kaldi_dir import KaldiDirError, KaldiImportConfig, export_kaldi_dir, import_kaldi_dir

WORDS = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()


def make_kaldi_dir(fsdd_dir, d, takes=8, piped=2, segmented=False):
    """A data dir of real takes: ids SPEAKER-DIGIT-TAKE, some as piped commands; with ``segmented``, one long
    recording per speaker holding its takes (and a segments file)."""
    d.mkdir(parents=True)
    files = sorted((fsdd_dir / "recordings").glob("*.wav"))
    chosen = [f for f in files if int(f.stem.split("_")[2]) == 0 and f.stem.split("_")[1] in ("jackson", "theo")][:takes]
    utts = {}
    for f in chosen:
        digit, spk, take = f.stem.split("_")
        utts[f"{spk}-{digit}-{take}"] = (f, spk, WORDS[int(digit)])
    wav, segs = [], []
    if segmented:
        by_spk = {}
        for utt, (f, spk, _) in sorted(utts.items()):
            by_spk.setdefault(spk, []).append((utt, sf.read(f, dtype="int16")[0]))
        for spk, items in by_spk.items():
            path, t, audio = d / f"{spk}.wav", 0.0, []
            for utt, x in items:
                segs.append(f"{utt} {spk}-rec {t:.4f} {t + len(x) / 8000:.4f}\n")
                audio.append(x)
                t += len(x) / 8000
            sf.write(path, np.concatenate(audio), 8000, subtype="PCM_16")
            wav.append(f"{spk}-rec {path}\n")
        (d / "segments").write_text("".join(segs))
    else:
        for i, (utt, (f, _, _)) in enumerate(sorted(utts.items())):
            wav.append(f"{utt} cat {f} |\n" if i < piped else f"{utt} {f}\n")
    (d / "wav.scp").write_text("".join(wav))
    (d / "text").write_text("".join(f"{u} {w}\n" for u, (_, _, w) in sorted(utts.items())))
    (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, (_, s, _) in sorted(utts.items())))
    spk2utt = {}
    for u, (_, s, _) in sorted(utts.items()):
        spk2utt.setdefault(s, []).append(u)
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    return utts


def test_import_files_and_piped_commands(fsdd_dir, tmp_path):
    utts = make_kaldi_dir(fsdd_dir, tmp_path / "kd")
    cuts = import_kaldi_dir(tmp_path / "kd", tmp_path / "m", "corpus", "train")
    assert sorted(cuts.ids) == sorted(utts)
    for cut in cuts:
        f, spk, word = utts[cut.id]
        ref, rate = sf.read(f, dtype="float32")
        assert cut.sampling_rate == rate == 8000 and cut.supervisions[0].text == word
        assert cut.supervisions[0].speaker == spk
        np.testing.assert_allclose(cut.load_audio()[0], ref, atol=1e-6)  # piped commands too
    for kind in ("recordings", "supervisions", "cuts"):
        assert (tmp_path / "m" / f"corpus_{kind}_train.jsonl.gz").exists()


def test_segments_and_round_trip(fsdd_dir, tmp_path):
    utts = make_kaldi_dir(fsdd_dir, tmp_path / "kd", segmented=True)
    cuts = import_kaldi_dir(tmp_path / "kd", tmp_path / "m", "corpus", "test")
    for cut in cuts:
        ref, _ = sf.read(utts[cut.id][0], dtype="float32")
        got = cut.load_audio()[0]
        assert abs(len(got) - len(ref)) <= 1
        n = min(len(got), len(ref))
        np.testing.assert_allclose(got[:n], ref[:n], atol=1e-4)
    out = export_kaldi_dir(tmp_path / "m" / "corpus_recordings_test.jsonl.gz",
                           tmp_path / "m" / "corpus_supervisions_test.jsonl.gz", tmp_path / "back")
    for name in ("text", "utt2spk", "spk2utt"):
        assert (out / name).read_text() == (tmp_path / "kd" / name).read_text(), name
    seg_in = [l.split() for l in (tmp_path / "kd" / "segments").read_text().splitlines()]
    seg_out = {l.split()[0]: l.split() for l in (out / "segments").read_text().splitlines()}
    for u, r, a, b in seg_in:
        assert seg_out[u][1] == r and abs(float(seg_out[u][2]) - float(a)) < 1e-3 and abs(float(seg_out[u][3]) - float(b)) < 1e-3
    # and back in again: the same cuts
    again = import_kaldi_dir(out, tmp_path / "m2", "corpus", "test")
    a = sorted((c.id, c.start, c.duration) for c in again)
    b = sorted((c.id, c.start, c.duration) for c in cuts)
    assert [x[0] for x in a] == [x[0] for x in b]
    np.testing.assert_allclose([x[1:] for x in a], [x[1:] for x in b], atol=2e-4)


def test_whole_recording_round_trip_has_no_segments(fsdd_dir, tmp_path):
    make_kaldi_dir(fsdd_dir, tmp_path / "kd", takes=4)
    import_kaldi_dir(tmp_path / "kd", tmp_path / "m", "corpus", "dev")
    out = export_kaldi_dir(tmp_path / "m" / "corpus_recordings_dev.jsonl.gz",
                           tmp_path / "m" / "corpus_supervisions_dev.jsonl.gz", tmp_path / "back")
    assert not (out / "segments").exists()
    assert (out / "wav.scp").read_text().splitlines()[0].endswith("|")  # a piped entry stays a command
    for name in ("text", "utt2spk", "spk2utt"):
        assert (out / name).read_text() == (tmp_path / "kd" / name).read_text()


def test_every_problem_is_named_and_skip_bad_counts(fsdd_dir, tmp_path, caplog):
    utts = make_kaldi_dir(fsdd_dir, tmp_path / "kd")
    ids = sorted(utts)
    d = tmp_path / "kd"
    lines = (d / "wav.scp").read_text().splitlines()
    lines[3] = f"{ids[3]} /nonexistent/{ids[3]}.wav"  # a missing file
    (d / "wav.scp").write_text("\n".join(lines) + "\n")
    text = (d / "text").read_text().splitlines()
    text[4] = ids[4]  # an empty transcript
    (d / "text").write_text("\n".join(text) + "\n")
    with pytest.raises(KaldiDirError) as e:
        import_kaldi_dir(d, tmp_path / "m", "corpus", "train")
    msg = str(e.value)
    assert ids[3] in msg and "does not exist" in msg and ids[4] in msg and "empty transcript" in msg
    cuts = import_kaldi_dir(d, tmp_path / "m", "corpus", "train", KaldiImportConfig(skip_bad=True))
    assert sorted(cuts.ids) == sorted(set(ids) - {ids[3], ids[4]})
    assert "skipped 2 bad utterances" in caplog.text
    # duplicate ids and text / utt2spk disagreeing: named
    (d / "utt2spk").write_text((d / "utt2spk").read_text() + f"{ids[0]} x\nextra-utt jackson\n")
    r = CliRunner().invoke(cli, ["prepare", "kaldi", "--data-dir", str(d), "--split", "train", "--output-dir",
                                 str(tmp_path / "m3")])
    assert r.exit_code == 1
    assert f"duplicate ids {ids[0]}" in r.output and "extra-utt" in r.output and "spk2utt" in r.output, r.output


def test_prepare_kaldi_and_manifests_cli(fsdd_dir, tmp_path):
    make_kaldi_dir(fsdd_dir, tmp_path / "kd", takes=4)
    r = CliRunner().invoke(cli, ["prepare", "kaldi", "--data-dir", str(tmp_path / "kd"), "--split", "dev",
                                 "--prefix", "mine", "--output-dir", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["prepare", "manifests", "--recordings", str(tmp_path / "m" / "mine_recordings_dev.jsonl.gz"),
                                 "--supervisions", str(tmp_path / "m" / "mine_supervisions_dev.jsonl.gz"),
                                 "--split", "test", "--prefix", "mine", "--output-dir", str(tmp_path / "m2")])
    assert r.exit_code == 0, r.output
    with gzip.open(tmp_path / "m" / "mine_cuts_dev.jsonl.gz", "rt") as a, gzip.open(tmp_path / "m2" / "mine_cuts_test.jsonl.gz", "rt") as b:
        ca = sorted((c["id"], c["supervisions"][0]["text"]) for c in map(json.loads, a))
        cb = sorted((c["id"], c["supervisions"][0]["text"]) for c in map(json.loads, b))
    assert ca == cb and len(ca) == 4


def test_cuts_export_writes_mixtures_and_perturbed_cuts_as_audio(fsdd_dir, tmp_path):
    """FSDD's connected digits (MixedCuts of several takes and recorded pauses) and a speed-perturbed copy
    exported as a Kaldi data dir and imported back: the same samples, text and speaker per utterance; plain
    takes keep pointing at their own files."""
    from lhotse import CutSet, Recording
    from lhotse.cut import MonoCut, MixedCut
    from lhotse.supervision import SupervisionSegment

    from asrdistill.data.connected_digits import ConnectedDigitsConfig, build_connected_digits
    from asrdistill.data.kaldi_dir import export_cuts_kaldi_dir
    from asrdistill.data.speed_perturb import speed_perturbed
    from asrdistill.utils.errors import UserError

    takes = []
    for f in sorted((fsdd_dir / "recordings").glob("*_theo_*.wav"))[:24]:
        digit, spk, take = f.stem.split("_")
        rec = Recording.from_file(f, recording_id=f.stem)
        sup = SupervisionSegment(id=f.stem, recording_id=f.stem, start=0, duration=rec.duration, channel=0,
                                 text=WORDS[int(digit)], speaker=spk)
        takes.append(MonoCut(id=f.stem, start=0, duration=rec.duration, channel=0, recording=rec, supervisions=[sup]))
    mixed = build_connected_digits({"theo": takes}, ConnectedDigitsConfig(utterances_per_speaker=3), 0, 8000)
    assert all(isinstance(c, MixedCut) for c in mixed)
    cuts = CutSet.from_cuts(speed_perturbed(takes[:2] + mixed[:2], [0.9, 1.0]))
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    with pytest.raises(UserError, match="cut sp0.9-0_theo_0 is not a span"):  # a transformed cut needs somewhere to write its audio
        export_cuts_kaldi_dir(tmp_path / "cuts.jsonl.gz", tmp_path / "nope")
    d = export_cuts_kaldi_dir(tmp_path / "cuts.jsonl.gz", tmp_path / "kd", tmp_path / "audio")
    wav = dict(line.split(" ", 1) for line in (d / "wav.scp").read_text().splitlines())
    assert wav[takes[0].id] == takes[0].recording.sources[0].source  # a plain take: its own file
    assert len(list((tmp_path / "audio").glob("*.wav"))) == 6  # 2 mixtures, 2 perturbed takes, 2 perturbed mixtures
    back = {c.id: c for c in import_kaldi_dir(d, tmp_path / "m", "x", "train")}
    assert set(back) == {c.id for c in cuts}
    for c in cuts:
        a, b = c.load_audio()[0], back[c.id].load_audio()[0]
        assert a.shape == b.shape, c.id
        np.testing.assert_allclose(a, b, atol=1.0 / 32768, err_msg=c.id)  # 16-bit PCM of the same samples
        s = back[c.id].supervisions[0]
        assert s.text == " ".join(x.text for x in sorted(c.supervisions, key=lambda x: x.start)), c.id
        assert s.speaker == c.supervisions[0].speaker
    assert back[mixed[0].id].supervisions[0].text.count(" ") >= 1  # connected: several words


def test_speed_perturb_cli_writes_train_sp_beside_train(fsdd_dir, tmp_path):
    make_kaldi_dir(fsdd_dir, tmp_path / "kd", takes=3, piped=1)
    import_kaldi_dir(tmp_path / "kd", tmp_path / "m", "mine", "train")
    r = CliRunner().invoke(cli, ["prepare", "speed-perturb", "--manifest-dir", str(tmp_path / "m"), "--prefix", "mine",
                                 "--factors", "0.9,1.1"])
    assert r.exit_code == 0, r.output
    from lhotse import CutSet

    train = list(CutSet.from_file(tmp_path / "m" / "mine_cuts_train.jsonl.gz"))
    sp = {c.id: c for c in CutSet.from_file(tmp_path / "m" / "mine_cuts_train_sp.jsonl.gz")}
    assert list(sp) == [c.id for c in train] + [f"sp{f}-{c.id}" for f in (0.9, 1.1) for c in train]
    for c in train:  # resampled on loading: 1/0.9 as long, the speaker a speaker of its own
        slow = sp[f"sp0.9-{c.id}"]
        assert abs(slow.duration - c.duration / 0.9) < 2e-3 and slow.supervisions[0].speaker == "sp0.9-" + c.supervisions[0].speaker
        assert abs(slow.load_audio().shape[1] - c.load_audio().shape[1] / 0.9) <= 2
    r = CliRunner().invoke(cli, ["prepare", "speed-perturb", "--manifest-dir", str(tmp_path / "m"), "--prefix", "mine",
                                 "--split", "dev"])
    assert r.exit_code != 0 and "mine_cuts_dev" in r.output
