"""Export of a frame classifier (a student, or an ensemble as one graph) to ONNX, with a JSON sidecar.

The exported graph ``model.onnx`` computes, for a chunk of CMVN-normalized fbank frames,

    loglik[t] = log( (1/N) sum_n softmax(z_n[t]) ) - log p(s)          (T, num_pdfs)

the pseudo log-likelihoods of hybrid decoding (log posterior minus log prior: the priors are
folded in), for the ``N`` exported members (``N = 1`` for a student; the arithmetic mean of the
posteriors for an ensemble, as ``decode run --combine arithmetic``).

Input contract (``feats``, float32 ``(T + L + R, D)``, ``L, R`` the context, 20 and 5 in the
paper): frame ``t`` of the output uses input rows ``t .. t + L + R``, i.e. the splicing of
:mod:`asrdistill.features.context_window` is done inside the graph (the first layer is a
convolution over time whose kernel is the first layer's weights over the 26-frame window). To
score a whole utterance as training did, pad it with ``L`` copies of its first frame and ``R``
copies of its last (:func:`asrdistill.deploy.runtime.pad_edges`); a streaming caller keeps the
last ``L + R`` frames between chunks.

The sidecar ``model.json`` carries what a caller needs besides the graph: the filterbank
options, the context, the CMVN statistics (global mean and standard deviation of the training
split: the stored statistics of ``transcribe --cmvn stored``), the log prior, the number of
pdfs, the map from transition id to pdf and phone (so decoding needs no GMM model), the phone
symbols, the acoustic scale, the members and seeds, the parameter count and the multiply-adds
per frame, and the identities (sha256) of the tree and of the graph it was exported next to.

The graph is written with ``onnx.helper`` from the network's weights (Conv, MatMul, Add, Relu,
LogSoftmax, ReduceLogSumExp; opset 17): it does not depend on torch's ONNX exporter.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..utils.atomic import atomic_path, atomic_write_text
from ..utils.errors import UserError

log = logging.getLogger(__name__)

SIDECAR_VERSION = 1


@dataclass
class ExportConfig:
    """Options of ``asrdistill export``."""

    format: str = field(default="onnx", metadata={"help": "Model format.", "choices": ["onnx"]})
    opset: int = field(default=17, metadata={"help": "ONNX opset.", "min": 17})
    acoustic_scale: float = field(
        default=0.0,
        metadata={"help": "Acoustic scale recorded for transcription; 0: the best on dev of the model's decoding "
                  "(decode_dev/results.json, decode_member{m}_dev/, ...), else 0.1.", "min": 0},
    )


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def stacked_arrays(model) -> tuple:
    """``(weights, biases)`` numpy lists of a :class:`~asrdistill.nnet.ensemble.StackedDnn`:
    ``weights[l]`` ``(N, in, out)``, ``biases[l]`` ``(N, out)``, float32."""
    weights = [w.detach().cpu().float().numpy() for w in model.weights]
    biases = [b.detach().cpu().float().numpy()[:, 0, :] for b in model.biases]
    return weights, biases


def multiply_adds_per_frame(weights: Sequence[np.ndarray]) -> int:
    """Multiply-adds of one output frame over all members (the convolution costs what the spliced linear layer does)."""
    return int(sum(w.shape[0] * w.shape[1] * w.shape[2] for w in weights))


def build_onnx(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], log_priors: np.ndarray, feature_dim: int,
               left: int, right: int, opset: int = 17):
    """The ONNX graph of the module doc for ``N`` stacked members (``weights[l]``: ``(N, in, out)``).

    Returns an ``onnx.ModelProto`` (checked by ``onnx.checker``).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n, in_dim, hidden = weights[0].shape
    width = left + 1 + right
    if in_dim != width * feature_dim:
        raise ValueError(f"first layer takes {in_dim} inputs, not ({left} + 1 + {right}) x {feature_dim}")
    num_pdfs = weights[-1].shape[2]
    inits, nodes = [], []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    # first layer: spliced linear == Conv1d over time, weight (N*H, D, W): w[n*H + h, d, k] = W0[n, k*D + d, h]
    w0 = weights[0].reshape(n, width, feature_dim, hidden).transpose(0, 3, 2, 1).reshape(n * hidden, feature_dim, width)
    nodes += [
        helper.make_node("Transpose", ["feats"], ["feats_dt"], perm=[1, 0]),
        helper.make_node("Unsqueeze", ["feats_dt", const("axis0", np.array([0], np.int64))], ["feats_1dt"]),
        helper.make_node("Conv", ["feats_1dt", const("w0", w0.astype(np.float32)),
                                  const("b0", biases[0].reshape(-1).astype(np.float32))], ["conv"]),
        helper.make_node("Reshape", ["conv", const("shape_nht", np.array([n, hidden, -1], np.int64))], ["a0_nht"]),
        helper.make_node("Transpose", ["a0_nht"], ["a0"], perm=[0, 2, 1]),  # (N, T, H)
    ]
    x = "a0"
    for l in range(1, len(weights)):
        nodes.append(helper.make_node("Relu", [x], [f"h{l}"]))
        nodes.append(helper.make_node("MatMul", [f"h{l}", const(f"w{l}", weights[l].astype(np.float32))], [f"m{l}"]))
        nodes.append(helper.make_node("Add", [f"m{l}", const(f"b{l}", biases[l][:, None, :].astype(np.float32))],
                                      [f"a{l}"]))
        x = f"a{l}"
    if len(weights) == 1:
        raise ValueError("a network with no hidden layer cannot be exported")
    nodes.append(helper.make_node("LogSoftmax", [x], ["logp"], axis=2))  # (N, T, C)
    if n == 1:
        nodes.append(helper.make_node("Squeeze", ["logp", "axis0"], ["logp_mean"]))
    else:  # log mean_n p_n = logsumexp_n log p_n - log N
        nodes.append(helper.make_node("ReduceLogSumExp", ["logp"], ["lse"], axes=[0], keepdims=0))
        nodes.append(helper.make_node("Sub", ["lse", const("log_n", np.array(math.log(n), np.float32))], ["logp_mean"]))
    nodes.append(helper.make_node("Sub", ["logp_mean", const("log_prior", np.asarray(log_priors, np.float32))],
                                  ["loglik"]))
    graph = helper.make_graph(
        nodes, "asrdistill_frame_classifier",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["frames_in", feature_dim])],
        [helper.make_tensor_value_info("loglik", TensorProto.FLOAT, ["frames_out", num_pdfs])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="asrdistill")
    model.ir_version = min(model.ir_version, 8)  # readable by older onnxruntime releases too
    onnx.checker.check_model(model)
    return model


def _acoustic_scale(model_dir: Path, members: Optional[List[int]]) -> Optional[float]:
    """The best dev acoustic scale of an earlier decoding of this model (member or combined), if any."""
    from ..decode.runner import best_scale

    names = [f"decode_member{members[0]}_dev"] if members and len(members) == 1 else []
    names += ["decode_dev"]
    for name in names:
        if (model_dir / name / "results.json").exists():
            return float(best_scale(model_dir / name))
    return None


def _sampling_rate(feature_dir: Path, prefix: str, split: str) -> int:
    """The sampling rate of the training audio (the first cut of the split's feature manifest)."""
    from ..utils.readers import iter_cuts

    path = feature_dir / f"{prefix}_cuts_{split}.jsonl.gz"
    if not path.exists():
        raise UserError(f"{path} does not exist (its audio's sampling rate is the model's)")
    for cut in iter_cuts(path):
        return int(cut.sampling_rate)
    raise UserError(f"{path} holds no cuts")


def global_cmvn(cmvn_path) -> Dict[str, list]:
    """Global mean, std and frame count of a CMVN statistics file (all its speakers pooled)."""
    from ..features.cmvn import VAR_FLOOR, CmvnStats

    stats = CmvnStats.load(cmvn_path)
    if not stats.count:
        raise UserError(f"{cmvn_path} holds no CMVN statistics")
    count = sum(stats.count.values())
    total = sum(stats.sum.values())
    sumsq = sum(stats.sumsq.values())
    mean = total / count
    var = np.maximum(sumsq / count - mean * mean, VAR_FLOOR)
    return {"count": float(count), "mean": mean.tolist(), "std": np.sqrt(var).tolist(), "source": str(cmvn_path)}


def export_model(model_dir, tree_dir, feature_dir, prefix: str, out_dir=None, members: Optional[List[int]] = None,
                 config: ExportConfig = ExportConfig(), lang_dir=None, graph_dir=None, cmvn_split: str = "train") -> Path:
    """Export ``model_dir``'s members (all, or ``members``) to ``out_dir`` (default ``model_dir/export``).

    ``feature_dir`` gives the filterbank options (``fbank_config.yaml``) and the stored CMVN
    statistics (``{prefix}_cmvn_{cmvn_split}.json``); ``tree_dir`` the transition model;
    ``lang_dir`` (optional) the phone symbols, for word times; ``graph_dir`` (default
    ``tree_dir/graph``) is identified in the sidecar. Returns the sidecar's path.
    """
    import torch
    import yaml

    from ..decode.acoustic import load_transition_model
    from ..nnet.trainer import load_members
    from ..utils.config import command_line, provenance
    from ..utils.readers import reading

    model_dir, tree_dir, feature_dir = Path(model_dir), Path(tree_dir), Path(feature_dir)
    out_dir = Path(out_dir) if out_dir else model_dir / "export"
    graph_dir = Path(graph_dir) if graph_dir else tree_dir / "graph"
    model = load_members(model_dir)
    all_members = list(range(model.num_members))
    chosen = list(members) if members else all_members
    bad = [m for m in chosen if m not in all_members]
    if bad:
        raise UserError(f"--members {bad} not in {model_dir} (members 0..{model.num_members - 1})")
    weights, biases = stacked_arrays(model)
    weights, biases = [w[chosen] for w in weights], [b[chosen] for b in biases]
    with reading(model_dir / "log_priors.pt", "prior file"):
        log_priors = torch.load(model_dir / "log_priors.pt").float().numpy()
    dnn = model.config
    fbank_yaml = feature_dir / "fbank_config.yaml"
    if not fbank_yaml.exists():
        raise UserError(f"{fbank_yaml} does not exist: --feature-dir must hold the features the model was trained on")
    with reading(fbank_yaml, "filterbank config"):
        fbank = yaml.safe_load(fbank_yaml.read_text())
    fbank = {k: v for k, v in fbank.items() if not str(k).startswith("_")}
    cmvn_path = feature_dir / f"{prefix}_cmvn_{cmvn_split}.json"
    if not cmvn_path.exists():
        raise UserError(f"{cmvn_path} does not exist (the stored CMVN statistics of the export)")
    sampling_rate = _sampling_rate(feature_dir, prefix, cmvn_split)
    _, tm = load_transition_model(tree_dir)
    num_tids = tm.num_transition_ids
    pdf_of = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)
    if pdf_of.max() >= log_priors.shape[0] or tm.num_pdfs != weights[-1].shape[2]:
        raise UserError(f"{tree_dir} has {tm.num_pdfs} pdfs but {model_dir} has {weights[-1].shape[2]} outputs")
    phone_of = np.array([0] + [tm.transition_id_to_phone(t) for t in range(1, num_tids + 1)], dtype=np.int64)
    start_of_phone = np.array([0] + [int(tm.transition_ids_is_start_of_phone(t)) for t in range(1, num_tids + 1)])
    phones = None
    lang_phones = Path(lang_dir) / "phones.txt" if lang_dir else None
    if lang_phones is not None and lang_phones.exists():
        from ..lang.lang_dir import _symbols

        phones = {int(i): s for s, i in _symbols(lang_phones).items()}
    scale = config.acoustic_scale or _acoustic_scale(model_dir, chosen) or 0.1
    onnx_model = build_onnx(weights, biases, log_priors, dnn.feature_dim, dnn.left_context, dnn.right_context,
                            config.opset)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "model.onnx") as tmp:
        tmp.write_bytes(onnx_model.SerializeToString())
    graph = {"dir": str(graph_dir)}
    for name in ("HCLG.fst", "words.txt"):
        if (graph_dir / name).exists():
            graph[name] = sha256_file(graph_dir / name)
    seeds = [model.seeds[m] for m in chosen]
    macs = multiply_adds_per_frame(weights)
    sidecar = {
        "version": SIDECAR_VERSION,
        "format": "onnx",
        "model": "model.onnx",
        "input": {"name": "feats", "frames": "T + left + right", "dim": dnn.feature_dim,
                  "what": "CMVN-normalized log-mel fbank; output frame t uses input rows t .. t + left + right"},
        "output": {"name": "loglik", "what": "log mean posterior - log prior (pseudo log-likelihood), (T, num_pdfs)"},
        "context": {"left": dnn.left_context, "right": dnn.right_context},
        "fbank": fbank,
        "sampling_rate": sampling_rate,
        "cmvn": {"norm_vars": True, **global_cmvn(cmvn_path)},
        "num_pdfs": int(weights[-1].shape[2]),
        "log_prior": log_priors.tolist(),
        "transition_pdf": pdf_of.tolist(),
        "transition_phone": phone_of.tolist(),
        "transition_starts_phone": start_of_phone.tolist(),
        "phones": {str(k): v for k, v in sorted(phones.items())} if phones else None,
        "acoustic_scale": float(scale),
        "members": chosen,
        "seeds": seeds,
        "combine": "arithmetic",
        "dnn": {"hidden_layers": dnn.hidden_layers, "hidden_dim": dnn.hidden_dim},
        "parameters": int(sum(w[0].size + b[0].size for w, b in zip(weights, biases)) * len(chosen)),
        "mflop_per_frame": 2.0 * macs / 1e6,
        "tree": {"dir": str(tree_dir), "sha256": sha256_file(tree_dir / "tree") if (tree_dir / "tree").exists() else None},
        "graph": graph,
        "source": {"model_dir": str(model_dir), "feature_dir": str(feature_dir), "prefix": prefix},
        "command": command_line(),
        "provenance": provenance(),
    }
    atomic_write_text(out_dir / "model.json", json.dumps(sidecar, indent=1))
    log.info("exported %s members %s (%d parameters, %.2f MFLOP/frame) -> %s", model_dir, chosen,
             sidecar["parameters"], sidecar["mflop_per_frame"], out_dir)
    return out_dir / "model.json"
