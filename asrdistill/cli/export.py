"""``asrdistill export``: a network (student or ensemble) as one ONNX graph with a JSON sidecar."""

from __future__ import annotations

from pathlib import Path

import click

from ..deploy.export import ExportConfig
from ..utils.config import with_config


@click.command("export")
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Network directory (member*.pt, log_priors.pt): a student or an ensemble.")
@click.option("--members", default="", help="Comma-separated member indices to export (default: all; several are "
              "averaged in one graph, as the ensemble decodes).")
@click.option("--tree-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("exp/tri"),
              help="The GMM system whose tree defines the network's outputs.")
@click.option("--feature-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("data/fbank"),
              help="The training features' directory: fbank_config.yaml and {prefix}_cmvn_{cmvn-split}.json.")
@click.option("--prefix", default="fsdd", help="Corpus prefix of the manifest file names.")
@click.option("--cmvn-split", default="train", help="Split whose pooled CMVN statistics are stored in the sidecar.")
@click.option("--lang-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/lang"),
              help="Lang directory (phones.txt: word times in transcriptions); skipped if missing.")
@click.option("--graph-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Graph identified in the sidecar [default: TREE_DIR/graph].")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory [default: MODEL_DIR/export].")
@with_config(ExportConfig)
def export(config, model_dir, members, tree_dir, feature_dir, prefix, cmvn_split, lang_dir, graph_dir, out_dir) -> None:
    """Export a network to ONNX (input: CMVN-normalized fbank frames; output: log posterior - log prior)."""
    from ..deploy.export import export_model
    from ..utils.errors import UserError

    try:
        ids = [int(m) for m in members.split(",") if m.strip()] if members else None
    except ValueError:
        raise UserError(f"--members {members!r}: comma-separated integers expected")
    sidecar = export_model(model_dir, tree_dir, feature_dir, prefix, out_dir, ids, config, lang_dir=lang_dir,
                           graph_dir=graph_dir, cmvn_split=cmvn_split)
    import json

    meta = json.loads(sidecar.read_text())
    click.echo(f"{sidecar.parent / meta['model']}: members {meta['members']}, {meta['parameters']} parameters, "
               f"{meta['mflop_per_frame']:.3f} MFLOP/frame, acoustic scale {meta['acoustic_scale']:g}")
