"""``asrdistill transcribe``: words of audio files with an exported network and a graph (offline or streaming)."""

from __future__ import annotations

from pathlib import Path

import click

from ..deploy.transcribe import TranscribeConfig
from ..utils.config import with_config


@click.command("transcribe")
@click.argument("audio", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="An export directory of 'asrdistill export' (model.onnx, model.json).")
@click.option("--graph", "graph_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Graph directory (HCLG.fst, words.txt) of the model's tree, e.g. exp/tri/graph.")
@click.option("--streaming/--offline", default=False, help="Feed the audio in --chunk-ms chunks; print partial "
              "hypotheses (to stderr) as they change.")
@click.option("--cmvn-stats", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="--cmvn speaker: a CMVN statistics file ({prefix}_cmvn_{split}.json).")
@click.option("--speaker", default=None, help="--cmvn speaker: the speaker of every input (default: a cut "
              "manifest's own speakers).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a JSON list of results (words with start/end times in seconds, partials).")
@with_config(TranscribeConfig)
def transcribe(config, audio, model_dir, graph_dir, streaming, cmvn_stats, speaker, json_out) -> None:
    """Transcribe WAV/FLAC files, wav.scp files or lhotse manifests: one line 'id words' per utterance.

    Runs the network on onnxruntime (CPU, --num-threads) and Kaldi's FasterDecoder on the graph.
    """
    import json
    import sys

    from ..deploy.transcribe import Transcriber, iter_inputs, result_json
    from ..utils.atomic import atomic_write_text

    t = Transcriber(model_dir, graph_dir, config, cmvn_stats)
    if streaming:
        from ..deploy.streaming import stream_utterance
        from ..utils.errors import UserError

        if config.cmvn == "utterance":
            raise UserError("--streaming needs --cmvn stored, speaker or running (utterance CMVN needs the whole "
                            "utterance)")
    results = []
    for item in iter_inputs(audio):
        samples, rate = item.load()
        spk = speaker or item.speaker
        if streaming:
            res, session = stream_utterance(t, item.utt, samples, rate, config.chunk_ms, spk,
                                            on_partial=lambda u, w: click.echo(f"{u} (partial) {' '.join(w)}", err=True))
            partials = [{"audio_seconds": round(a, 3), "text": " ".join(w)} for a, w in session.partials]
        else:
            res, partials = t.transcribe(item.utt, samples, rate, spk), None
        click.echo(f"{res.utt} {' '.join(res.words)}".rstrip())
        sys.stdout.flush()
        results.append(result_json(res, partials))
    if json_out:
        atomic_write_text(json_out, json.dumps(results, indent=1))
