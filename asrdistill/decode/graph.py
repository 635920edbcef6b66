"""Decoding graphs HCLG = H o C o L o G, as Kaldi's ``utils/mkgraph.sh`` builds them.

1. G from an ARPA file (kaldilm's arpa2fst, written as a binary FST; back-off arcs on ``#0``);
2. LG = L_disambig o G, determinized in the log semiring (``fstdeterminizestar --use-log=true``),
   minimized (encoded), weights pushed with ``fstpushspecial``;
3. CLG = C o LG with the tree's context width (kaldifst ``compose_context``);
4. H (transition ids, no self-loops, with transition probabilities scaled by
   ``transition_scale``) from the tree and transition model; HCLGa = H o CLG, determinized in
   the log semiring, the disambiguation transition ids removed (``fstrmsymbols``), epsilons
   removed locally (``fstrmepslocal``: never more arcs, so back-off arcs are not multiplied
   out), minimized (encoded);
5. self-loops added with ``self_loop_scale`` (``reorder`` as in training graphs).

Graphs move between steps as kaldifst objects; the steps kaldifst does not expose
(``fstrmsymbols``, ``fstrmepslocal``, ``fstpushspecial``) run on numpy arrays of the FST
(:mod:`.fst_arrays`, :mod:`.fst_ops`), exchanged through OpenFst binary files, never text.
Composition is OpenFst's (sequence filter): kaldifst does not bind Kaldi's table
composition (``fsttablecompose``), which builds an equivalent FST with a faster matcher.
``stats.json`` holds every stage's size and build time.

``kaldilm`` is imported in a subprocess: importing it in a process that has (or will
have) ``kaldi_hmm_gmm`` can deadlock (../shared/ENVIRONMENT.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

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


@contextlib.contextmanager
def _plain_arpa(arpa: Path) -> Iterator[Path]:
    """``arpa`` as a plain-text file (a gzipped one is unpacked into a temporary file: kaldilm reads plain text)."""
    import gzip
    import shutil
    import tempfile

    if Path(arpa).suffix != ".gz":
        yield Path(arpa)
        return
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / Path(arpa).stem
        with gzip.open(arpa, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        yield plain


def arpa_to_fst_text(arpa: Path, words_txt: Path) -> str:
    """G in OpenFst text format (integer labels of ``words_txt``), for inspection; graphs are built from
    :func:`arpa_to_fst` (binary). ``arpa`` may be gzipped (``.gz``)."""
    with _plain_arpa(arpa) as plain:
        out = subprocess.run([sys.executable, "-c", _ARPA2FST, str(plain), str(words_txt)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"arpa2fst failed on {arpa}:\n{out.stderr[-2000:]}")
    return out.stdout


_ARPA2FST_BINARY = """
import sys, kaldilm
kaldilm.arpa2fst(input_arpa=sys.argv[1], output_fst=sys.argv[3], disambig_symbol="#0", read_symbol_table=sys.argv[2],
                 max_arpa_warnings=0)
"""


def arpa_to_fst(arpa: Path, words_txt: Path):
    """G as a kaldifst ``StdVectorFst`` (through kaldilm's binary output file); ``arpa`` may be gzipped."""
    import tempfile

    import kaldifst

    for path, what in ((arpa, "ARPA language model"), (words_txt, "word list")):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path} does not exist (the {what} of the graph)")
    with _plain_arpa(arpa) as plain, tempfile.TemporaryDirectory() as tmp:
        out_path = Path(tmp) / "G.fst"
        out = subprocess.run([sys.executable, "-c", _ARPA2FST_BINARY, str(plain), str(words_txt), str(out_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if out.returncode != 0 or not out_path.exists():
            raise RuntimeError(f"arpa2fst failed on {arpa}:\n{out.stderr[-2000:]}")
        return kaldifst.StdVectorFst.read(str(out_path))


def _stats(fst) -> dict:
    from .fst_arrays import FstArrays

    a = fst if isinstance(fst, FstArrays) else FstArrays.from_fst(fst)
    return {"states": a.num_states, "arcs": a.num_arcs}


class _Laps:
    """Seconds of named steps, in order."""

    def __init__(self, times: dict, prefix: str):
        import time

        self.times, self.prefix, self.clock = times, prefix, time.perf_counter
        self.t0 = self.clock()

    def __call__(self, name: str) -> None:
        t = self.clock()
        self.times[f"{self.prefix}.{name}"] = round(t - self.t0, 3)
        if log.isEnabledFor(logging.DEBUG):
            import resource

            log.debug("%s.%s: %.1f s (peak RSS so far %.0f MB)", self.prefix, name, t - self.t0,
                      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        self.t0 = t


def make_lg(L, G, times: "dict | None" = None):
    """LG = push_special(min(det_log(L o G))) as a kaldifst FST (ilabel-sorted)."""
    import kaldifst

    from .fst_arrays import FstArrays
    from .fst_ops import push_special

    lap = _Laps({} if times is None else times, "LG")
    kaldifst.arcsort(G, sort_type="ilabel")
    kaldifst.arcsort(L, sort_type="olabel")
    LG = kaldifst.compose(L, G)
    lap("compose")
    kaldifst.determinize_star(LG, use_log=True)
    lap("determinize")
    kaldifst.minimize_encoded(LG)
    lap("minimize")
    LG = push_special(FstArrays.from_fst(LG)).to_fst()
    kaldifst.arcsort(LG, sort_type="ilabel")
    lap("pushspecial")
    return LG


def finish_hclga(HCLGa, disambig_tids, times: "dict | None" = None):
    """Disambiguation transition ids removed, local epsilon removal, connect, minimize (HCLGa after det)."""
    import kaldifst

    from .fst_arrays import FstArrays
    from .fst_ops import remove_eps_local, remove_input_symbols

    lap = _Laps({} if times is None else times, "HCLGa")
    arrays = FstArrays.from_fst(HCLGa)
    del HCLGa
    lap("to_arrays")
    arrays = remove_eps_local(remove_input_symbols(arrays, disambig_tids))
    lap("rmsymbols_rmepslocal")
    out = arrays.to_fst()
    del arrays
    kaldifst.connect(out)
    lap("from_arrays_connect")
    kaldifst.minimize_encoded(out)
    lap("minimize")
    return out


def build_hclg(lang, ctx, tm, G, config: GraphConfig = GraphConfig()):
    """HCLG (kaldifst ``StdVectorFst``, ilabel-sorted) from a :class:`LangDir`, a tree and transition
    model and G; returns ``(HCLG, stats)`` with every stage's size and build seconds."""
    import time

    import kaldi_hmm_gmm as khg
    import kaldifst

    sizes, times, steps = {"G": _stats(G)}, {}, {}
    t0 = time.perf_counter()

    def lap(name, fst):
        nonlocal t0
        times[name] = round(time.perf_counter() - t0, 3)
        sizes[name] = _stats(fst)
        t0 = time.perf_counter()

    LG = make_lg(lang.lexicon_fst(disambig=True), G, steps)
    lap("LG", LG)
    CLG, ilabels = kaldifst.compose_context(
        disambig_syms=lang.disambig_phones, context_width=ctx.context_width, central_position=ctx.central_position, ifst=LG
    )
    kaldifst.arcsort(CLG, sort_type="ilabel")
    lap("CLG", CLG)
    hcfg = khg.HTransducerConfig()
    hcfg.transition_scale = config.transition_scale
    Ha, disambig_tids = khg.get_h_transducer(ilabel_info=ilabels, ctx_dep=ctx, trans_model=tm, config=hcfg)
    kaldifst.arcsort(Ha, sort_type="olabel")
    lap("Ha", Ha)
    sub = _Laps(steps, "HCLGa")
    HCLGa = kaldifst.compose(Ha, CLG)
    del CLG
    sub("compose")
    kaldifst.determinize_star(HCLGa, use_log=True)
    sub("determinize")
    HCLGa = finish_hclga(HCLGa, disambig_tids, steps)
    lap("HCLGa", HCLGa)
    HCLG = khg.add_self_loops(self_loop_scale=config.self_loop_scale, disambig_syms=[], reorder=True, trans_model=tm,
                              ifst=HCLGa)
    kaldifst.arcsort(HCLG, sort_type="ilabel")
    lap("HCLG", HCLG)
    return HCLG, {**sizes, "seconds": times, "step_seconds": steps}


def make_graph(lang_dir, model_dir, arpa, out_dir, config: GraphConfig = GraphConfig()) -> dict:
    """Build ``out_dir/HCLG.fst`` (+ ``words.txt``, ``stats.json``); returns the graph statistics."""
    import time

    from ..lang.lang_dir import LangDir
    from .acoustic import load_transition_model

    lang = LangDir(lang_dir)
    ctx, tm = load_transition_model(model_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    G = arpa_to_fst(Path(arpa), lang.path / "words.txt")
    g_time = round(time.perf_counter() - t0, 3)
    HCLG, stats = build_hclg(lang, ctx, tm, G, config)
    with atomic_path(out_dir / "HCLG.fst") as tmp:
        HCLG.write(str(tmp))
    atomic_write_text(out_dir / "words.txt", (lang.path / "words.txt").read_text())
    stats = {**stats, "arpa": str(arpa), "seconds": {"G": g_time, **stats["seconds"]}}
    atomic_write_text(out_dir / "stats.json", json.dumps(stats, indent=1))
    save_config(config, out_dir / "config.yaml")
    return stats
