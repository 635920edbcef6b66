"""The recorded non-speech that fills FSDD's connected-digit pauses: segments and seconds per speaker
(the bank of :mod:`asrdistill.data.nonspeech` with the default thresholds).

    python benchmarks/nonspeech_bank.py --corpus-dir ../shared/data/fsdd
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus-dir", type=Path, default=Path("../shared/data/fsdd"))
    args = ap.parse_args()

    from lhotse import Recording

    from asrdistill.data.connected_digits import ConnectedDigitsConfig
    from asrdistill.data.nonspeech import nonspeech_bank

    config = ConnectedDigitsConfig()
    audios = defaultdict(list)
    for path in sorted((args.corpus_dir / "recordings").glob("*.wav")):
        audios[path.stem.split("_")[1]].append(Recording.from_file(path).load_audio()[0])
    print("| speaker | takes | non-speech segments | seconds |")
    print("|---|---|---|---|")
    for speaker, takes in sorted(audios.items()):
        bank = nonspeech_bank(speaker, takes, 8000, config.nonspeech_floor_db, config.nonspeech_peak_db)
        print(f"| {speaker} | {len(takes)} | {len(bank)} | {bank.length.sum() / 8000:.1f} |")


if __name__ == "__main__":
    main()
