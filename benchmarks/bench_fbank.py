"""Feature-extraction speed: asrdistill's Fbank against kaldi-native-fbank (and lhotse's Fbank).

Times real time per core (audio seconds / compute seconds, one thread) over the same
real recordings, in one run. Audio is read into memory first; only extraction is timed.

    python benchmarks/bench_fbank.py --corpus-dir ../shared/data/fsdd --num-files 2500
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus-dir", type=Path, required=True)
    p.add_argument("--num-files", type=int, default=2500)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--upsample-16k", action="store_true", help="also time 16 kHz audio (each file resampled by 2x repetition)")
    args = p.parse_args()
    torch.set_num_threads(1)

    from asrdistill.features.fbank import Fbank, FbankConfig

    files = sorted((args.corpus_dir / "recordings").glob("*.wav"))[: args.num_files]
    wavs = [sf.read(f, dtype="int16")[0] for f in files]
    sr = 8000
    rows = []
    for rate in ([sr, 16000] if args.upsample_16k else [sr]):
        data = wavs if rate == sr else [np.repeat(w, 2) for w in wavs]
        seconds = sum(len(w) for w in data) / rate
        ours = Fbank(FbankConfig(num_mel_bins=40, dither=1.0))
        t_ours = best_of(lambda: [ours.extract(w, rate, seed=i) for i, w in enumerate(data)], args.repeats)
        rows.append(("asrdistill Fbank (torch)", rate, seconds / t_ours))

        import kaldi_native_fbank as knf

        opts = knf.FbankOptions()
        opts.frame_opts.samp_freq = rate
        opts.frame_opts.dither = 1.0
        opts.mel_opts.num_bins = 40

        def run_knf():
            for w in data:
                f = knf.OnlineFbank(opts)
                f.accept_waveform(rate, w.astype(np.float32))
                f.input_finished()
                np.stack([f.get_frame(i) for i in range(f.num_frames_ready)])

        rows.append(("kaldi-native-fbank (C++)", rate, seconds / best_of(run_knf, args.repeats)))
        try:
            from lhotse import Fbank as LhotseFbank, FbankConfig as LhotseFbankConfig

            lf = LhotseFbank(LhotseFbankConfig(num_filters=40, dither=0.0, sampling_rate=rate))
            floats = [w.astype(np.float32) / 32768 for w in data]
            rows.append(("lhotse Fbank (torch)", rate, seconds / best_of(lambda: [lf.extract(w, rate) for w in floats], args.repeats)))
        except Exception as e:  # pragma: no cover - informational only
            print(f"lhotse Fbank unavailable: {e}")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, 1 thread; "
          f"{len(files)} files, {sum(len(w) for w in wavs) / sr / 60:.1f} min of audio")
    print("| extractor | sampling rate | x real time (1 core) |\n|---|---|---|")
    for name, rate, rtf in rows:
        print(f"| {name} | {rate} Hz | {rtf:.0f} |")


if __name__ == "__main__":
    main()
