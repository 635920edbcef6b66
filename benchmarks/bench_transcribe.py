"""The deployment table: CPU cost and WER of exported networks (ensemble, student, tiny student), one thread.

For each system (``EXP_DIR/<name>`` with the members to export), in a fresh process each:

* export to ONNX (``asrdistill export``; the acoustic scale is the system's best on dev, from its
  ``decode_dev`` or ``decode_member{m}_dev`` directory);
* parameters and MFLOP per frame (2 x multiply-adds of one 10 ms frame, all members); the network's own
  time (onnxruntime alone, whole utterances) over the audio time (RTF network);
* **offline**: every utterance of the split transcribed whole (fbank, CMVN, onnxruntime, Kaldi's
  FasterDecoder with the recipe's beam), RTF = compute time / audio time (audio loaded beforehand);
* **streaming**: the same utterances fed in 100 ms chunks (online fbank, the 5 look-ahead frames,
  partial hypotheses), RTF as above; *first-partial latency*: from the start of the first word (its
  time in the final result) to the moment its first non-empty partial is out (end of the chunk that
  produced it, plus that chunk's mean compute time); *final latency*: compute after the last chunk
  until the final result (what a user waits for after the end of the audio, when RTF < 1);
* WER on the split: offline and streaming with the recipe's per-speaker CMVN (the same statistics
  as ``decode run``, so comparable with the recipe's WER, also shown), and streaming with running
  CMVN from the stored training statistics (what a new speaker gets, no statistics needed);
* peak resident memory: of ``asrdistill transcribe`` itself (offline, speaker CMVN, one thread) over the
  split in a fresh process of its own (the deployment figure), and of the measuring process (export and
  all the passes above; table.json only).

Timings are the fastest of ``--repeats`` passes (3), as the machine may be shared.

Usage (the figures of BENCHMARKS.md; outputs only under --work-dir)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_transcribe.py --recipe-dir egs/fsdd \\
        --systems ensemble:0,1,2,3 student:0 tsweep_tiny:1 --work-dir /tmp/deployment

writes ``WORK_DIR/table.md`` (the markdown fragment the recipe's RESULTS.md includes) and
``WORK_DIR/table.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def measure(args) -> dict:
    """One system, in this process: export, then offline and streaming transcription of the split."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from asrdistill.data.cuts import cut_speaker, cut_text
    from asrdistill.decode.scoring import score
    from asrdistill.deploy.export import ExportConfig, export_model
    from asrdistill.deploy.streaming import stream_utterance
    from asrdistill.deploy.transcribe import TranscribeConfig, Transcriber
    from asrdistill.utils.readers import read_cuts

    recipe = Path(args.recipe_dir)
    name, _, members = args.one.partition(":")
    model_dir = recipe / "exp" / name
    export_dir = Path(args.work_dir) / f"export_{name}_{members.replace(',', '_') or 'all'}"
    export_model(model_dir, recipe / "exp" / "tri", recipe / "data" / "fbank", args.prefix, export_dir,
                 [int(m) for m in members.split(",")] if members else None, ExportConfig(),
                 lang_dir=recipe / "data" / "lang")
    meta = json.loads((export_dir / "model.json").read_text())
    ids = meta["members"]
    members = ",".join(map(str, ids))
    cmvn = recipe / "data" / "fbank" / f"{args.prefix}_cmvn_{args.split}.json"
    cuts = list(read_cuts(recipe / "data" / "manifests" / f"{args.prefix}_cuts_{args.split}.jsonl.gz"))
    if args.limit:
        cuts = cuts[: args.limit]
    audio = [(c.id, c.load_audio()[0].astype(np.float32), c.sampling_rate, cut_speaker(c)) for c in cuts]
    refs = {c.id: cut_text(c).split() for c in cuts}
    seconds = sum(len(x) / r for _, x, r, _ in audio)
    graph = recipe / "exp" / "tri" / "graph"
    out = {"system": f"{name} ({'members ' + members if len(ids) > 1 else 'member ' + members})",
           "name": name, "members": ids, "parameters": meta["parameters"], "mflop_per_frame": meta["mflop_per_frame"],
           "acoustic_scale": meta["acoustic_scale"], "utterances": len(audio), "audio_seconds": seconds}
    for mode in ("speaker", "running"):
        t = Transcriber(export_dir, graph, TranscribeConfig(cmvn=mode, num_threads=1), cmvn)
        t.transcribe(*audio[0][:3], audio[0][3])  # warm-up
        t._running.clear()  # running CMVN: start from the stored statistics
        passes = args.repeats if mode == "speaker" else 1  # timings: the fastest pass (a shared machine)
        if mode == "speaker":
            best = None
            for _ in range(passes):
                hyps, t0 = {}, time.perf_counter()
                for utt, x, rate, spk in audio:
                    hyps[utt] = t.transcribe(utt, x, rate, spk).words
                best = min(best or 1e30, time.perf_counter() - t0)
            out["offline_rtf"] = best / seconds
            out["offline_wer"] = score(refs, hyps)[0].wer
            best = None  # the network alone (onnxruntime), on the same inputs
            feats = [t.cmvn(spk).normalize_utterance(t.features(x, rate)) for _, x, rate, spk in audio]
            for _ in range(passes):
                t0 = time.perf_counter()
                for f in feats:
                    t.model.utterance_loglik(f)
                best = min(best or 1e30, time.perf_counter() - t0)
            out["network_rtf"] = best / seconds
        fastest = None
        for _ in range(passes):
            hyps, compute, finals, firsts = {}, 0.0, [], []
            for utt, x, rate, spk in audio:
                res, s = stream_utterance(t, utt, x, rate, args.chunk_ms, spk)
                hyps[utt] = res.words
                compute += s.compute_seconds
                finals.append(s.finish_seconds)
                first = next((a for a, w in s.partials if w), None)
                if first is not None and res.times:  # + the compute of one chunk (the mean)
                    n_chunks = max(1, int(np.ceil(len(x) / (rate * args.chunk_ms / 1000))))
                    firsts.append(first - res.times[0].start + s.compute_seconds / n_chunks)
            if fastest is None or compute < fastest[0]:
                fastest = (compute, finals, firsts)
        out[f"streaming_wer_{mode}"] = score(refs, hyps)[0].wer
        if mode == "speaker":
            compute, finals, firsts = fastest
            out["streaming_rtf"] = compute / seconds
            out["final_latency_ms"] = 1000 * float(np.mean(finals))
            out["first_partial_latency_ms"] = 1000 * float(np.mean(firsts)) if firsts else None
    recipe_best = (model_dir / f"decode_member{ids[0]}_{args.split}" / "best.json") if len(ids) == 1 else \
        (model_dir / f"decode_{args.split}" / "best.json")
    out["recipe_wer"] = json.loads(recipe_best.read_text())["test"]["wer"] if recipe_best.exists() else None
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["export_dir"] = str(export_dir)
    return out


def transcribe_peak_rss_mb(args, row) -> float:
    """Peak resident memory (MB) of ``asrdistill transcribe`` (offline, speaker CMVN, one thread) over the
    split's manifest, in a fresh process of its own (``wait4``: that process alone, no other child)."""
    import tempfile

    recipe = Path(args.recipe_dir)
    cmd = [str(Path(sys.executable).with_name("asrdistill")), "transcribe", "--model", row["export_dir"],
           "--graph", str(recipe / "exp" / "tri" / "graph"), "--cmvn", "speaker", "--num-threads", "1",
           "--cmvn-stats", str(recipe / "data" / "fbank" / f"{args.prefix}_cmvn_{args.split}.json"),
           str(recipe / "data" / "manifests" / f"{args.prefix}_cuts_{args.split}.jsonl.gz")]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            sys.exit(f"{' '.join(cmd)} failed:\n{err.read().decode()[-3000:]}")
    return usage.ru_maxrss / 1024


def table(rows, args) -> str:
    head = ("| system | parameters | MFLOP/frame | RTF network | RTF offline | RTF streaming | first partial (ms) | final latency (ms) "
            f"| {args.split} %WER offline | streaming | streaming, running CMVN | recipe (`decode run`) | peak RSS of `asrdistill transcribe` (MB) |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        fp = f"{r['first_partial_latency_ms']:.0f}" if r["first_partial_latency_ms"] is not None else "-"
        rw = f"{r['recipe_wer']:.2f}" if r["recipe_wer"] is not None else "-"
        lines.append(f"| {r['system']} | {r['parameters']:,} | {r['mflop_per_frame']:.3f} | {r['network_rtf']:.4f} | "
                     f"{r['offline_rtf']:.4f} | "
                     f"{r['streaming_rtf']:.4f} | {fp} | {r['final_latency_ms']:.1f} | {r['offline_wer']:.2f} | "
                     f"{r['streaming_wer_speaker']:.2f} | {r['streaming_wer_running']:.2f} | {rw} | "
                     f"{r['transcribe_peak_rss_mb']:.0f} |")
    big = next((r for r in rows if len(r["members"]) > 1), None)
    notes = []
    if big:
        for r in rows:
            if r is not big:
                notes.append(f"{r['system']}: {r['mflop_per_frame'] / big['mflop_per_frame']:.1%} of the ensemble's "
                             f"MFLOP per frame, {r['network_rtf'] / big['network_rtf']:.1%} of its network time, "
                             f"{r['offline_rtf'] / big['offline_rtf']:.1%} of its offline RTF, "
                             f"{r['streaming_rtf'] / big['streaming_rtf']:.1%} of its streaming RTF")
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, one thread (onnxruntime and torch)"
    return "\n".join(
        [f"Deployment on this CPU ({machine}; {time.strftime('%Y-%m-%d')}): exported ONNX networks, onnxruntime, "
         f"Kaldi's FasterDecoder; {rows[0]['utterances']} {args.split} utterances, {rows[0]['audio_seconds']:.0f} s of "
         f"audio; streaming in {args.chunk_ms:g} ms chunks.", "", *lines, ""]
        + [f"- {n}" for n in notes]
        + ["", f"Command: `{' '.join(['python', 'benchmarks/bench_transcribe.py'] + sys.argv[1:])}`", ""])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe-dir", default="egs/fsdd", help="recipe directory with data/ and exp/")
    ap.add_argument("--systems", nargs="+", default=["ensemble:0,1,2,3", "student:0", "tsweep_tiny:1"],
                    help="NAME[:MEMBERS] of EXP_DIR/NAME (default: all members; several: exported as one averaging graph)")
    ap.add_argument("--prefix", default="fsdd")
    ap.add_argument("--split", default="test")
    ap.add_argument("--chunk-ms", type=float, default=100.0)
    ap.add_argument("--limit", type=int, default=0, help="first N utterances only (0: all)")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes; the fastest is reported")
    ap.add_argument("--work-dir", default="exp/deployment", help="exports and table.md/table.json go here")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    if args.one:
        print(json.dumps(measure(args)))
        return
    rows = []
    for system in args.systems:
        if not (Path(args.recipe_dir) / "exp" / system.split(":")[0]).is_dir():
            print(f"skipping {system}: no {Path(args.recipe_dir) / 'exp' / system.split(':')[0]}", file=sys.stderr)
            continue
        cmd = [sys.executable, __file__, "--one", system] + [a for a in sys.argv[1:]]
        r = subprocess.run(cmd, capture_output=True, text=True)  # a fresh process per measurement
        if r.returncode != 0:
            sys.exit(f"{system} failed:\n{r.stderr[-3000:]}")
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        rows[-1]["transcribe_peak_rss_mb"] = transcribe_peak_rss_mb(args, rows[-1])
        print(json.dumps(rows[-1]), file=sys.stderr)
    md = table(rows, args)
    Path(args.work_dir, "table.json").write_text(json.dumps(rows, indent=1))
    Path(args.work_dir, "table.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
