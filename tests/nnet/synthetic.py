"""A small synthetic frame store whose labels depend on the context (so windows matter)."""

import numpy as np

from asrdistill.nnet.frame_store import FrameStore


def synthetic_store(num_utts=40, dim=5, classes=6, seed=0) -> FrameStore:
    rng = np.random.default_rng(seed)
    feats, targets = [], []
    for u in range(num_utts):
        t = int(rng.integers(5, 60))
        f = rng.normal(size=(t, dim)).astype(np.float32)
        # label: sign pattern of the frame and its left neighbour
        prev = np.concatenate([f[:1], f[:-1]])
        y = ((f[:, 0] > 0).astype(int) + 2 * (prev[:, 1] > 0).astype(int) + (f[:, 2] > 1)) % classes
        feats.append(f)
        targets.append(y)
    store = FrameStore.from_arrays(feats, [f"u{u}" for u in range(num_utts)], targets)
    store.num_classes = classes
    return store
