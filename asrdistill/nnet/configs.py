"""The configs of the network stages: architectures, training, distillation, specialists.

Plain dataclasses without torch, so that the command line (``asrdistill train --help``,
option parsing, ``--config`` files) works without importing torch; the modules that use
them (:mod:`.dnn`, :mod:`.trainer`, :mod:`.distillation`, :mod:`.class_clusters`,
:mod:`.specialists`) re-export them under their old names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from ..features.cmvn_policy import CMVN_HELP


#: Parameter initializations of :class:`FrameDnn` (``DnnConfig.init``): ``kaiming`` (He et al.,
#: 2015; the default) or ``torch`` (PyTorch's ``nn.Linear`` default, the behaviour before
#: ``init`` existed). See :class:`FrameDnn` for the maths.
INIT_CHOICES = ("kaiming", "torch")


@dataclass
class DnnConfig:
    """Architecture of a frame classifier (ReLU MLP over a context window)."""

    feature_dim: int = field(default=40, metadata={"help": "Features per frame."})
    left_context: int = field(default=20, metadata={"help": "Frames of left context."})
    right_context: int = field(default=5, metadata={"help": "Frames of right context."})
    hidden_layers: int = field(default=4, metadata={"help": "Hidden layers."})
    hidden_dim: int = field(default=512, metadata={"help": "Units per hidden layer."})
    num_outputs: int = field(default=0, metadata={"help": "Output classes (pdfs); 0: from the alignments."})
    dropout: float = field(
        default=0.0,
        metadata={"help": "Dropout probability after each hidden ReLU, in training mode only (inverted dropout: "
                  "kept units are scaled by 1/(1-p), so evaluation needs no rescaling). Default 0: off."},
    )
    max_norm: float = field(
        default=0.0, metadata={"help": "Max L2 norm of each unit's incoming weights, as the paper's dropout nets (0: off)."}
    )
    init: str = field(
        default="kaiming",
        metadata={
            "help": "Parameter initialization: 'kaiming' (default; hidden W ~ N(0, 2/fan_in), output W ~ N(0, 1/fan_in), "
            "zero biases: unit-RMS activations at every depth) or 'torch' (nn.Linear's default U(+-1/sqrt(fan_in)), "
            "whose activations shrink about 2.4x per ReLU layer). Only affects new networks: loaded ones take "
            "their weights from the checkpoint.",
            "choices": list(INIT_CHOICES),
        },
    )

    def __post_init__(self) -> None:
        if self.init not in INIT_CHOICES:
            raise ValueError(f"DnnConfig.init must be one of {list(INIT_CHOICES)}, got {self.init!r}")

    @property
    def input_dim(self) -> int:
        return (self.left_context + 1 + self.right_context) * self.feature_dim

    def num_parameters(self) -> int:
        dims = [self.input_dim] + [self.hidden_dim] * self.hidden_layers + [self.num_outputs]
        return sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


#: Named architectures. ``paper``: Hinton et al.'s speech DNN (8 x 2560 ReLU, 26 x 40 input,
#: about 14,000 outputs: 85M parameters). The others are for CPU recipes.
PRESETS: Dict[str, dict] = {
    "paper": dict(hidden_layers=8, hidden_dim=2560, num_outputs=14000),
    "medium": dict(hidden_layers=6, hidden_dim=1024),
    "small": dict(hidden_layers=4, hidden_dim=512),
    "tiny": dict(hidden_layers=2, hidden_dim=128),
    "micro": dict(hidden_layers=1, hidden_dim=32),
}


def preset(name: str, **overrides) -> DnnConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown DNN preset {name!r}; known: {sorted(PRESETS)}")
    values = dict(PRESETS[name])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return DnnConfig(**values)


@dataclass
class TrainConfig:
    cmvn: bool = field(default=True, metadata={"help": CMVN_HELP})
    train_split: str = field(
        default="train", metadata={"help": "Split of the alignment directory to train on (e.g. train_sp: speed-perturbed)."})
    num_members: int = field(default=4, metadata={"help": "Ensemble members trained together.", "min": 1})
    member_offset: int = field(
        default=0, metadata={"help": "Index of the first member (separate processes per member).", "min": 0})
    seed: int = field(default=0, metadata={"help": "Base seed: member i is initialized with seed + i."})
    batch_size: int = field(default=256, metadata={"help": "Frames per member per step.", "min": 1})
    max_epochs: int = field(default=10, metadata={"help": "Passes over the training frames.", "min": 1})
    max_steps: int = field(default=0, metadata={"help": "Stop after this many steps (0: max_epochs).", "min": 0})
    lr: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW).", "min_exclusive": 0})
    weight_decay: float = field(
        default=0.0,
        metadata={"help": "AdamW (decoupled) weight decay: each step multiplies every parameter, biases included, "
                  "by 1 - lr * weight_decay. Default 0: off.", "min": 0},
    )
    warmup_steps: int = field(default=200, metadata={"help": "Linear warmup steps.", "min": 0})
    final_lr_fraction: float = field(default=0.05, metadata={"help": "Cosine decay ends at this fraction of lr.", "min": 0})
    grad_clip: float = field(default=5.0, metadata={"help": "Max gradient norm per member.", "min_exclusive": 0})
    eval_every: int = field(default=0, metadata={"help": "Evaluate on dev every N steps (0: every epoch).", "min": 0})
    patience: int = field(default=3, metadata={"help": "Stop when no member improved for this many evaluations.", "min": 1})
    checkpoint_every: int = field(default=500, metadata={"help": "Write checkpoint.pt every N steps.", "min": 1})
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:N or auto."})
    bf16: bool = field(default=True, metadata={"help": "bf16 autocast on CUDA (ignored on CPU)."})
    store_on_device: bool = field(default=True, metadata={"help": "Keep the frame store on the GPU (else pinned host memory)."})
    store_dir: str = field(
        default="",
        metadata={"help": "Where the memory-mapped frame stores of the splits are built (default: ALI_DIR/frame_store; "
                  "'memory': in RAM, no files). Built once, rebuilt when the manifest, alignment or CMVN changes."})
    log_every: int = field(
        default=20,
        metadata={"help": "Log, and check the loss for NaN/inf, every N steps (the only host synchronization of a "
                  "step; also before every evaluation and checkpoint).", "min": 1})
    average_every: int = field(
        default=0,
        metadata={"help": "torchrun: 0 = all-reduce the gradients every step (DDP); N > 0 = post-local SGD: after "
                  "warmup_steps of DDP each rank steps on its own and the models are averaged every N steps "
                  "(torch.distributed.algorithms.model_averaging). A resume starts every rank from rank 0's "
                  "optimizer state (not bit-identical to an uninterrupted run, unlike DDP).", "min": 0})

    @property
    def seeds(self) -> List[int]:
        return [self.seed + self.member_offset + i for i in range(self.num_members)]


@dataclass
class DistillConfig(TrainConfig):
    temperatures: Tuple[float, ...] = field(
        default=(2.0,), metadata={"help": "Temperature per student member (one value: all members)."})
    soft_weight: float = field(default=1.0, metadata={"help": "Weight of the soft-target term (scaled by T^2)."})
    hard_weight: float = field(default=0.25, metadata={"help": "Weight of the hard-label term (T = 1); 0: soft only."})
    teacher: str = field(default="online", metadata={"help": "Teacher outputs computed in the step or cached once.",
                                                    "choices": ["online", "cached"]})
    top_k: int = field(default=0, metadata={"help": "Cached teacher: keep the top k logits per frame (0: all)."})
    combine: str = field(default="arithmetic", metadata={"help": "How the teacher members' posteriors combine.",
                                                         "choices": ["arithmetic", "geometric"]})
    transfer_fraction: float = field(default=1.0, metadata={"help": "Fraction of the training frames in the transfer set."})
    transfer_seed: int = field(default=0, metadata={"help": "Seed of the transfer-set subset."})
    omit_words: Tuple[str, ...] = field(default=(), metadata={"help": "Drop utterances containing these words from the transfer set."})
    transfer_cuts: str = field(
        default="", metadata={"help": "Unlabeled transfer set: a feature manifest (cuts with features); soft targets only."})
    transfer_cmvn: str = field(default="", metadata={"help": "CMVN statistics of --transfer-cuts' speakers."})
    augment_warp: float = field(
        default=0.0, metadata={"help": "Online teacher: warp each window's mel axis by a factor in [1 - w, 1 + w]."})
    augment_noise: float = field(default=0.0, metadata={"help": "Online teacher: Gaussian noise added to the windows."})


@dataclass
class ClusterConfig:
    num_clusters: int = field(default=12, metadata={"help": "K-means clusters (at most one specialist each)."})
    min_size: int = field(default=4, metadata={"help": "Clusters with fewer classes get no specialist."})
    max_size: int = field(default=60, metadata={"help": "Keep at most this many classes per cluster (nearest the centroid)."})
    overlap_margin: float = field(
        default=0.0, metadata={"help": "A class also joins clusters within (1 + margin) x its nearest distance (0: a partition)."})
    kmeans_iters: int = field(default=100, metadata={"help": "Lloyd iterations (batch k-means)."})
    kmeans_restarts: int = field(default=5, metadata={"help": "K-means++ restarts; the lowest inertia is kept."})
    seed: int = field(default=0, metadata={"help": "Seed of the k-means++ initialization."})
    pairs_per_cluster: int = field(default=5, metadata={"help": "Most confused pairs written per cluster."})


@dataclass
class SpecialistConfig(TrainConfig):
    num_members: int = field(default=0, metadata={"help": "Specialists to train (0: one per subset, from --member-offset)."})
    seed: int = field(default=1000, metadata={"help": "Base seed: specialist i shuffles with seed + i."})
    max_epochs: int = field(default=4, metadata={"help": "Passes over each specialist's own frames."})
    lr: float = field(default=3e-4, metadata={"help": "Peak learning rate (AdamW); low, as the weights start from the generalist."})
    dustbin_fraction: float = field(default=0.5, metadata={"help": "Share of each batch drawn from the other classes."})
    soft_weight: float = field(default=0.0, metadata={"help": "Weight of the generalist's collapsed soft targets (0: hard only)."})
    temperature: float = field(default=2.0, metadata={"help": "Temperature of the soft-target term."})
    generalist_member: int = field(default=0, metadata={"help": "Which member of the generalist directory is the generalist."})
