"""Decoding graphs HCLG = H o C o L o G, as Kaldi's ``utils/mkgraph.sh`` builds them.

1. G from an ARPA file (kaldilm's arpa2fst, back-off arcs on ``#0``);
2. LG = det(L_disambig o G), minimized (encoded);
3. CLG = C o LG with the tree's context width (kaldifst ``compose_context``);
4. H (transition ids, no self-loops, with transition probabilities scaled by
   ``transition_scale``) from the tree and transition model; HCLGa = det(H o CLG) with the
   disambiguation transition ids removed, epsilon-free and minimized;
5. self-loops added with ``self_loop_scale`` (``reorder`` as in training graphs).

``kaldilm`` is imported in a subprocess: importing it in a process that has (or will
have) ``kaldi_hmm_gmm`` can deadlock (../shared/ENVIRONMENT.md).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..utils.atomic import atomic_path, atomic_write_text
from ..utils.config import save_config

log = logging.getLogger(__name__)


@dataclass
class GraphConfig:
    transition_scale: float = field(default=1.0, metadata={"help": "Scale of transition log-probabilities in H."})
    self_loop_scale: float = field(default=0.1, metadata={"help": "Scale of self-loop log-probabilities."})


_ARPA2FST = """
import sys, kaldilm
sys.stdout.write(kaldilm.arpa2fst(input_arpa=sys.argv[1], disambig_symbol="#0", read_symbol_table=sys.argv[2],
                                  max_arpa_warnings=0))
"""


def arpa_to_fst_text(arpa: Path, words_txt: Path) -> str:
    """G in OpenFst text format (integer labels of ``words_txt``); ``arpa`` may be gzipped (``.gz``)."""
    import gzip
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        if Path(arpa).suffix == ".gz":  # kaldilm reads plain text
            plain = Path(tmp) / Path(arpa).stem
            with gzip.open(arpa, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            plain = Path(arpa)
        out = subprocess.run([sys.executable, "-c", _ARPA2FST, str(plain), str(words_txt)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"arpa2fst failed on {arpa}:\n{out.stderr[-2000:]}")
    return out.stdout


def _remove_ilabels(fst, labels):
    """Copy of ``fst`` with the given input labels replaced by epsilon (fstrmsymbols)."""
    import kaldifst

    labels = set(labels)
    lines = []
    for line in fst.to_str().splitlines():
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) >= 4 and int(parts[2]) in labels:
            parts[2] = "0"
        lines.append("\t".join(parts))
    return kaldifst.compile("\n".join(lines) + "\n")


def _fst_stats(fst) -> dict:
    states = fst.num_states
    arcs = sum(fst.num_arcs(s) for s in range(states))
    return {"states": states, "arcs": arcs}


def make_graph(lang_dir, model_dir, arpa, out_dir, config: GraphConfig = GraphConfig()) -> dict:
    """Build ``out_dir/HCLG.fst`` (+ ``words.txt``, ``stats.json``); returns the graph statistics."""
    import kaldi_hmm_gmm as khg
    import kaldifst

    from ..lang.lang_dir import LangDir
    from .acoustic import load_transition_model

    lang = LangDir(lang_dir)
    ctx, tm = load_transition_model(model_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    G = kaldifst.compile(arpa_to_fst_text(Path(arpa), lang.path / "words.txt"))
    kaldifst.arcsort(G, sort_type="ilabel")
    L = lang.lexicon_fst(disambig=True)
    kaldifst.arcsort(L, sort_type="olabel")
    LG = kaldifst.compose(L, G)
    kaldifst.determinize_star(LG)
    kaldifst.minimize_encoded(LG)
    kaldifst.arcsort(LG, sort_type="ilabel")
    CLG, ilabels = kaldifst.compose_context(
        disambig_syms=lang.disambig_phones, context_width=ctx.context_width, central_position=ctx.central_position, ifst=LG
    )
    kaldifst.arcsort(CLG, sort_type="ilabel")
    hcfg = khg.HTransducerConfig()
    hcfg.transition_scale = config.transition_scale
    Ha, disambig_tids = khg.get_h_transducer(ilabel_info=ilabels, ctx_dep=ctx, trans_model=tm, config=hcfg)
    kaldifst.arcsort(Ha, sort_type="olabel")
    HCLGa = kaldifst.compose(Ha, CLG)
    kaldifst.determinize_star(HCLGa)
    HCLGa = _remove_ilabels(HCLGa, disambig_tids)
    kaldifst.rmepsilon(HCLGa)
    kaldifst.minimize_encoded(HCLGa)
    HCLG = khg.add_self_loops(self_loop_scale=config.self_loop_scale, disambig_syms=[], reorder=True, trans_model=tm,
                              ifst=HCLGa)
    kaldifst.arcsort(HCLG, sort_type="ilabel")
    with atomic_path(out_dir / "HCLG.fst") as tmp:
        HCLG.write(str(tmp))
    atomic_write_text(out_dir / "words.txt", (lang.path / "words.txt").read_text())
    stats = {"LG": _fst_stats(LG), "CLG": _fst_stats(CLG), "HCLG": _fst_stats(HCLG), "arpa": str(arpa)}
    atomic_write_text(out_dir / "stats.json", json.dumps(stats, indent=1))
    save_config(config, out_dir / "config.yaml")
    return stats
