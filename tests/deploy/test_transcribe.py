"""asrdistill transcribe on real FSDD audio: offline equals the toolkit's decoding, streaming equals offline."""

import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from asrdistill.cli import cli


@pytest.fixture(scope="module")
def exported(deploy_system, tmp_path_factory):
    root = deploy_system
    out = tmp_path_factory.mktemp("export") / "m0"
    r = CliRunner().invoke(cli, ["export", "--model-dir", str(root / "ens"), "--tree-dir", str(root / "mono"),
                                 "--feature-dir", str(root / "f"), "--lang-dir", str(root / "lang"), "--members", "0",
                                 "--out-dir", str(out), "--acoustic-scale", "0.1"])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def test_cuts(deploy_system):
    from asrdistill.utils.readers import read_cuts

    return list(read_cuts(deploy_system / "m" / "fsdd_cuts_test.jsonl.gz"))


def _transcriber(root, exported, **kw):
    from asrdistill.deploy.transcribe import TranscribeConfig, Transcriber

    return Transcriber(exported, root / "mono" / "graph", TranscribeConfig(**kw), root / "f" / "fsdd_cmvn_test.json")


def test_offline_matches_decode_run_on_the_test_speaker(deploy_system, exported, test_cuts, tmp_path):
    """Same network, graph, search and speaker CMVN as 'decode run': the same words (features differ only by dither)."""
    from asrdistill.data.cuts import cut_speaker, cut_text
    from asrdistill.decode.runner import DecodeConfig, decode_split
    from asrdistill.decode.scoring import write_results

    root = deploy_system
    spec = {"kind": "nnet", "model_dir": str(root / "ens"), "tree_dir": str(root / "mono"), "members": [0],
            "cmvn": str(root / "f" / "fsdd_cmvn_test.json")}
    (ref,) = decode_split(spec, root / "mono" / "graph", root / "f" / "fsdd_cuts_test.jsonl.gz", tmp_path / "dec",
                          "test", DecodeConfig(decoder="faster", beam=8.0, max_active=2000, acoustic_scales=(0.1,)),
                          num_jobs=1)
    t = _transcriber(root, exported, cmvn="speaker")
    results = [t.transcribe(c.id, c.load_audio()[0], c.sampling_rate, cut_speaker(c)) for c in test_cuts]
    hyps = {r.utt: r.words for r in results}
    # word times from the best path's word-position phones: one span per word, in order, inside the audio
    timed = [r for r in results if r.words and r.times is not None]
    assert len(timed) >= 0.9 * sum(1 for r in results if r.words)
    for r in timed:
        assert [w.word for w in r.times] == r.words
        assert all(a.end <= b.start + 1e-9 for a, b in zip(r.times, r.times[1:]))
        assert all(0 <= w.start < w.end <= r.duration + 0.03 for w in r.times), r
    refs = {c.id: cut_text(c).split() for c in test_cuts}
    ours = write_results(tmp_path / "ours", "test", refs, hyps, [])
    assert ours.words == ref[0.1]["words"]
    assert abs(ours.wer - ref[0.1]["wer"]) <= 2.0, (ours.line(), ref[0.1]["line"])
    assert ref[0.1]["wer"] < 50.0  # a real (if tiny) model: far from chance


def test_cli_files_wav_scp_manifest_json_and_resampling(deploy_system, exported, test_cuts, tmp_path):
    root = deploy_system
    isolated = [c for c in test_cuts if len(c.supervisions) == 1 and c.supervisions[0].text.count(" ") == 0][:4]
    files = []
    for c in isolated:
        path = tmp_path / f"{c.id}.wav"
        sf.write(path, c.load_audio()[0], c.sampling_rate)
        files.append(path)
    import soxr

    up = tmp_path / "up16k.flac"  # another rate and format: resampled to the model's 8 kHz
    sf.write(up, soxr.resample(isolated[0].load_audio()[0], 8000, 16000), 16000)
    scp = tmp_path / "wav.scp"
    scp.write_text(f"a {files[0]}\nb cat {files[1]} |\n")
    common = ["transcribe", "--model", str(exported), "--graph", str(root / "mono" / "graph"), "--cmvn", "stored"]
    r = CliRunner().invoke(cli, common + [str(f) for f in files] + [str(up), str(scp), "--json", str(tmp_path / "o.json")])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert [l.split()[0] for l in lines] == [f.stem for f in files] + ["up16k", "a", "b"]
    words = {l.split()[0]: l.split()[1:] for l in lines}
    assert words["a"] == words[files[0].stem] and words["b"] == words[files[1].stem]  # path and piped command
    assert words["up16k"] == words[files[0].stem]
    results = json.loads((tmp_path / "o.json").read_text())
    for res in results:
        if res["words"]:
            times = [(w["start"], w["end"]) for w in res["words"]]
            assert [w["word"] for w in res["words"]] == res["text"].split()
            assert all(0 <= a < b <= res["duration"] + 0.03 for a, b in times), res
    # the same command in a process where torch cannot be imported: the same output (inference is torch-free)
    import subprocess
    import sys

    code = "import sys; sys.modules['torch'] = None; from asrdistill.cli import cli; cli()"
    r2 = subprocess.run([sys.executable, "-c", code] + common + [str(f) for f in files] + [str(up), str(scp)],
                        capture_output=True, text=True)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert r2.stdout.strip().splitlines() == lines
    # a cut manifest: ids and speakers from it
    r = CliRunner().invoke(cli, common + [str(root / "m" / "fsdd_cuts_test.jsonl.gz")])
    assert r.exit_code == 0, r.output
    assert len(r.output.strip().splitlines()) == len(test_cuts)


@pytest.mark.parametrize("cmvn", ["speaker", "running", "stored"])
def test_streaming_final_equals_offline(deploy_system, exported, test_cuts, cmvn):
    from asrdistill.data.cuts import cut_speaker
    from asrdistill.deploy.streaming import stream_utterance

    t = _transcriber(deploy_system, exported, cmvn=cmvn, cmvn_carry=False)
    multi = sorted(test_cuts, key=lambda c: -c.duration)[:4] + test_cuts[:2]
    for c in multi:
        samples = c.load_audio()[0]
        spk = cut_speaker(c)
        offline = t.transcribe(c.id, samples, c.sampling_rate, spk)
        final, session = stream_utterance(t, c.id, samples, c.sampling_rate, chunk_ms=100, speaker=spk)
        assert final.words == offline.words and final.times == offline.times
        assert final.reached_final == offline.reached_final
        # the scores the decoder read are offline's
        np.testing.assert_allclose(np.concatenate(session.scores),
                                   t.model.transition_scores(t.loglik(samples, c.sampling_rate, spk)), atol=1e-4)
        fed = [a for a, _ in session.partials]
        assert fed == sorted(fed) and all(a <= c.duration + 1e-6 for a in fed)
        if c in multi[:4]:  # connected digits: a first partial well before the audio is all fed
            assert session.partials and session.partials[0][0] < c.duration - 0.2, (session.partials, c.duration)


def test_streaming_cli_prints_partials_and_refuses_utterance_cmvn(deploy_system, exported, test_cuts, tmp_path):
    root = deploy_system
    c = max(test_cuts, key=lambda c: c.duration)
    wav = tmp_path / "long.wav"
    sf.write(wav, c.load_audio()[0], c.sampling_rate)
    common = ["transcribe", "--model", str(exported), "--graph", str(root / "mono" / "graph"), str(wav)]
    r = CliRunner().invoke(cli, common + ["--streaming", "--cmvn", "running", "--json", str(tmp_path / "s.json")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "s.json").read_text())[0]
    assert res["partials"] and res["partials"][-1]["text"] == res["text"] or not res["text"]
    r = CliRunner().invoke(cli, common + ["--streaming", "--cmvn", "utterance"])
    assert r.exit_code != 0 and "utterance" in r.output


def test_running_cmvn_carried_over_a_speaker_streams_as_offline(deploy_system, exported, test_cuts):
    """Kaldi-style online CMVN carried over a speaker's utterances: the same statistics whole or in chunks, so
    the same words; and not the same as starting every utterance afresh (the carry is used)."""
    from asrdistill.data.cuts import cut_speaker
    from asrdistill.deploy.streaming import stream_utterance

    offline_t = _transcriber(deploy_system, exported, cmvn="running")
    stream_t = _transcriber(deploy_system, exported, cmvn="running")
    fresh_t = _transcriber(deploy_system, exported, cmvn="running", cmvn_carry=False)
    differ = 0
    for c in test_cuts[:15]:
        x, spk = c.load_audio()[0], cut_speaker(c)
        off = offline_t.loglik(x, c.sampling_rate, spk)
        _, session = stream_utterance(stream_t, c.id, x, c.sampling_rate, 100, spk)
        np.testing.assert_allclose(np.concatenate(session.scores), stream_t.model.transition_scores(off), atol=1e-4)
        differ += not np.allclose(off, fresh_t.loglik(x, c.sampling_rate, spk), atol=1e-3)
    assert differ >= 10
