"""Lang directory, word-position dependent phones and OOV handling."""

import hashlib

import pytest

from asrdistill.lang.lang_dir import (
    LangConfig,
    LangDir,
    add_disambig,
    base_phone_name,
    phone_group_name,
    prepare_lang,
    word_position_pron,
)
from asrdistill.lang.lexicon import Lexicon, OovError, check_oovs, cmudict_lexicon

kaldifst = pytest.importorskip("kaldifst")

# A one-phone word, homophones, a pronunciation that is a prefix of another (without positions)
SMALL = {"A": [("AH",)], "AN": [("AE", "N"), ("AH", "N")], "AND": [("AE", "N", "D")], "ATE": [("EY", "T")],
         "EIGHT": [("EY", "T")]}

# What prepare_lang wrote for SMALL before position-dependent phones existed (positions off must not change it)
GOLDEN_SHA256 = {
    "phones.txt": "67c368456c36a96c802742c43f122c2f3a6082bb961ceb563c9c50973908e61e",
    "words.txt": "3a3cf9d4c9629d6efee1c6301cb8160a27022451e26cf02dafec498a23d3259d",
    "lexicon.txt": "90d6df35e6b77cd7233ea3484f5110e4f69bc006a5377a51acf516cdd7932755",
    "topo": "051ca3e0ce198285131941cb8e1e0f27494a524dae7f82f2ab75d2c443b7116b",
}
GOLDEN_L = """0 1 0 0 0.693147
0 1 1 0 0.693147
1 1 1 1 0.693147
1 2 1 1 0.693147
1 1 2 2 0.693147
1 2 2 2 0.693147
1 1 4 3 0.693147
1 2 4 3 0.693147
1 3 3 4
1 4 4 4
1 5 3 5
1 7 6 6
1 8 6 7
1
2 1 1 0
3 1 7 0 0.693147
3 2 7 0 0.693147
4 1 7 0 0.693147
4 2 7 0 0.693147
5 6 7 0
6 1 5 0 0.693147
6 2 5 0 0.693147
7 1 8 0 0.693147
7 2 8 0 0.693147
8 1 8 0 0.693147
8 2 8 0 0.693147"""
GOLDEN_L_DISAMBIG = """0 1 0 0 0.693147
0 1 1 0 0.693147
1 1 1 1 0.693147
1 2 1 1 0.693147
1 1 2 2 0.693147
1 2 2 2 0.693147
1 3 4 3
1 4 3 4
1 6 4 4
1 7 3 5
1 9 6 6
1 11 6 7
1 1 9 8
1
2 1 1 0
3 1 10 0 0.693147
3 2 10 0 0.693147
4 5 7 0
5 1 10 0 0.693147
5 2 10 0 0.693147
6 1 7 0 0.693147
6 2 7 0 0.693147
7 8 7 0
8 1 5 0 0.693147
8 2 5 0 0.693147
9 10 8 0
10 1 10 0 0.693147
10 2 10 0 0.693147
11 12 8 0
12 1 11 0 0.693147
12 2 11 0 0.693147"""


def _arcs(fst) -> list:
    return [" ".join(line.split()) for line in str(fst).strip().splitlines()]


def _words_of(lang: LangDir, phones, disambig: bool = False):
    """Words (with total cost) the lexicon FST outputs for a phone-name sequence; None if it rejects it."""
    acceptor = kaldifst.make_linear_acceptor([lang.phone_id[p] for p in phones])
    kaldifst.arcsort(acceptor, sort_type="olabel")
    best = kaldifst.shortest_path(kaldifst.compose(acceptor, lang.lexicon_fst(disambig)))
    if best.num_states == 0:
        return None
    ok, _, words, _ = kaldifst.get_linear_symbol_sequence(best)
    assert ok
    return [lang.id_word[w] for w in words]


def _names(lang, groups):
    return [[lang.id_phone[p] for p in g] for g in groups]


def test_cmudict_digits_without_stress():
    lex, missing = cmudict_lexicon(["ZERO", "SEVEN", "QWXZT"])
    assert missing == {"QWXZT": 1}
    assert ("Z", "IH", "R", "OW") in lex.prons["ZERO"] and ("Z", "IY", "R", "OW") in lex.prons["ZERO"]
    assert lex.prons["SEVEN"] == [("S", "EH", "V", "AH", "N")]
    stressed, _ = cmudict_lexicon(["SEVEN"], keep_stress=True)
    assert stressed.prons["SEVEN"] == [("S", "EH1", "V", "AH0", "N")]


def test_oovs_reported_by_name_and_count_or_mapped():
    lex = Lexicon({"ONE": [("W", "AH", "N")], "<UNK>": [("SPN",)]})
    texts = {"a": "ONE FOO ONE", "b": "FOO BAR"}
    with pytest.raises(OovError, match=r"FOO \(2\), BAR \(1\)"):
        check_oovs(texts, lex, "train transcripts", None)
    assert check_oovs(texts, lex, "train", "<UNK>") == {"a": "ONE <UNK> ONE", "b": "<UNK> <UNK>"}


def test_disambiguation_of_prefixes_and_homophones():
    out = dict(add_disambig([("A", ("x", "y")), ("B", ("x", "y", "z")), ("C", ("p",)), ("D", ("p",))]))
    assert out["A"] == ("x", "y", "#1") and out["B"] == ("x", "y", "z")
    assert {out["C"], out["D"]} == {("p", "#1"), ("p", "#2")}


def test_word_position_markers_and_base_names():
    assert word_position_pron(("AH",)) == ("AH_S",)
    assert word_position_pron(("AE", "N")) == ("AE_B", "N_E")
    assert word_position_pron(("AE", "N", "D")) == ("AE_B", "N_I", "D_E")
    assert word_position_pron(("S", "EH", "V", "AH", "N")) == ("S_B", "EH_I", "V_I", "AH_I", "N_E")
    assert word_position_pron(("SIL",)) == ("SIL",) and word_position_pron(("SPN",)) == ("SPN",)
    assert [base_phone_name(p) for p in ("AH_B", "AH0_E", "N_I", "T_S", "SIL", "SPN", "#1", "AH")] == \
        ["AH", "AH0", "N", "T", "SIL", "SPN", "#1", "AH"]
    assert base_phone_name("X_B", position_dependent=False) == "X_B"
    assert phone_group_name({"AH_B", "AH_I"}) == "AH_B/AH_I"
    assert phone_group_name({"AH_B", "AH_E", "AH_I", "AH_S", "IH_B"}) == "AH/IH_B"
    assert phone_group_name({"AY", "IH"}, position_dependent=False) == "AY/IH"


def test_position_dependent_lang_dir(tmp_path):
    lang = prepare_lang(Lexicon(SMALL), tmp_path, LangConfig())
    assert lang.position_dependent and lang.config.position_dependent_phones
    names = [lang.id_phone[i] for i in range(len(lang.id_phone))]
    assert names[:3] == ["<eps>", "SIL", "SPN"]
    assert names[3:27] == [f"{b}{s}" for b in ("AE", "AH", "D", "EY", "N", "T") for s in ("_B", "_E", "_I", "_S")]
    # with positions AN (AE_B N_E) is no prefix of AND (AE_B N_I D_E): only the homophones need #1, #2
    assert names[27:] == ["#0", "#1", "#2"]
    # lexicon.txt keeps the plain pronunciations, lexicon_pos.txt (L.fst's) has the markers
    assert lang.lexicon.prons["AND"] == [("AE", "N", "D")] and lang.lexicon.prons["!SIL"] == [("SIL",)]
    pos = lang.positional_lexicon.prons
    assert pos["A"] == [("AH_S",)] and pos["AN"] == [("AE_B", "N_E"), ("AH_B", "N_E")]
    assert pos["AND"] == [("AE_B", "N_I", "D_E")] and pos["!SIL"] == [("SIL",)] and pos["<UNK>"] == [("SPN",)]
    # Kaldi's phones/ lists
    variants = [[f"{b}{s}" for s in ("_B", "_E", "_I", "_S")] for b in ("AE", "AH", "D", "EY", "N", "T")]
    assert _names(lang, lang.phone_sets()) == [["SIL"], ["SPN"]] + variants
    assert _names(lang, lang.tree_roots()) == [["SIL", "SPN"]] + variants
    assert _names(lang, lang.extra_questions()) == [["SIL", "SPN"]] + [
        [f"{b}{s}" for b in ("AE", "AH", "D", "EY", "N", "T")] for s in ("_B", "_E", "_I", "_S")]
    assert _names(lang, [lang.context_independent_phones]) == [["SIL", "SPN"]]
    assert (tmp_path / "phones" / "roots.txt").read_text().splitlines()[:2] == [
        "shared split SIL SPN", "shared split AE_B AE_E AE_I AE_S"]
    assert (tmp_path / "phones" / "sets.int").read_text().splitlines()[2] == "3 4 5 6"
    assert sorted(p for s in lang.phone_sets() for p in s) == lang.phones  # the sets partition the phones
    assert [lang.base_phone(lang.phone_id[p]) for p in ("AE_B", "N_I", "T_S", "SIL", "SPN")] == \
        ["AE", "N", "T", "SIL", "SPN"]
    assert lang.base_phones() == ["SIL", "SPN", "AE", "AH", "D", "EY", "N", "T"]
    assert _names(lang, [lang.phone_ids(["SIL", "SPN"])]) == [["SIL", "SPN"]]
    assert _names(lang, [lang.phone_ids(["AH", "N_E", "AH_B"])]) == [["AH_B", "AH_E", "AH_I", "AH_S", "N_E"]]
    with pytest.raises(KeyError, match="ZH"):
        lang.phone_ids(["ZH"])
    assert lang.phone_ids(["ZH", "T_S"], missing_ok=True) == [lang.phone_id["T_S"]]
    assert [lang.word_position(lang.phone_id[p]) for p in ("SIL", "AE_B", "N_E", "N_I", "AH_S", "#0")] == \
        ["nonword", "begin", "end", "internal", "singleton", ""]
    # every variant has the non-silence topology
    topo = lang.topology()
    assert sorted(topo.phones) == lang.phones
    assert {topo.num_pdf_classes(p) for p in lang.phones if p not in lang.silence_phones} == {3}
    assert topo.num_pdf_classes(lang.phone_id["SIL"]) == 5 and topo.num_pdf_classes(lang.phone_id["SPN"]) == 5
    # reloading gives the same lang
    again = LangDir(tmp_path)
    assert again.position_dependent and again.phone_id == lang.phone_id and again.tree_roots() == lang.tree_roots()


def test_lexicon_fst_reads_positional_phones(tmp_path):
    lang = prepare_lang(Lexicon(SMALL), tmp_path, LangConfig())
    for disambig in (False, True):
        assert _words_of(lang, ["AH_S"], disambig) == ["A"]
        assert _words_of(lang, ["AE_B", "N_E"], disambig) == ["AN"]
        assert _words_of(lang, ["SIL", "AE_B", "N_I", "D_E", "SIL", "AH_B", "N_E"], disambig) == ["AND", "AN"]
        assert _words_of(lang, ["SPN", "AH_S"], disambig) == ["<UNK>", "A"]
        # phones in the wrong position, or without positions, are not words
        for wrong in (["AH"], ["AH_B"], ["AE_B", "N_I"], ["AE_B", "N_E", "D_E"], ["AE", "N", "D"]):
            if all(p in lang.phone_id for p in wrong):
                assert _words_of(lang, wrong, disambig) is None, wrong
    # homophones: L passes either word; L_disambig tells them apart by #1 / #2
    assert _words_of(lang, ["EY_B", "T_E"]) in (["ATE"], ["EIGHT"])
    assert _words_of(lang, ["EY_B", "T_E", "#1"], True) == ["ATE"]
    assert _words_of(lang, ["EY_B", "T_E", "#2"], True) == ["EIGHT"]


def test_positions_off_is_the_lang_of_before(tmp_path):
    lang = prepare_lang(Lexicon(SMALL), tmp_path, LangConfig(position_dependent_phones=False))
    for name, digest in GOLDEN_SHA256.items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest, name
    assert _arcs(lang.lexicon_fst()) == GOLDEN_L.splitlines()
    assert _arcs(lang.lexicon_fst(True)) == GOLDEN_L_DISAMBIG.splitlines()
    assert not lang.position_dependent and not (tmp_path / "lexicon_pos.txt").exists()
    assert not (tmp_path / "phones" / "word_boundary.txt").exists()
    assert lang.positional_lexicon is lang.lexicon
    assert _names(lang, lang.phone_sets()) == [["SIL"], ["SPN"], ["AE"], ["AH"], ["D"], ["EY"], ["N"], ["T"]]
    assert _names(lang, lang.tree_roots()) == [["SIL", "SPN"], ["AE"], ["AH"], ["D"], ["EY"], ["N"], ["T"]]
    assert _names(lang, lang.extra_questions()) == [["SIL", "SPN"]]
    assert lang.context_independent_phones == lang.silence_phones
    assert lang.base_phone(lang.phone_id["AE"]) == "AE" and lang.word_position(lang.phone_id["AE"]) == ""
    assert _words_of(lang, ["AE", "N", "D"]) == ["AND"]
    assert lang.phone_ids(["AE", "SIL"]) == [lang.phone_id["AE"], lang.phone_id["SIL"]]
    # a lang directory of before (no phones/, no key in lang_config.yaml) loads as position-independent
    import shutil

    old = tmp_path / "old"
    old.mkdir()
    for name in list(GOLDEN_SHA256) + ["L.fst", "L_disambig.fst"]:
        shutil.copy(tmp_path / name, old / name)
    (old / "lang_config.yaml").write_text("sil_prob: 0.5\nkeep_stress: false\noov_word: <UNK>\n")
    legacy = LangDir(old)
    assert not legacy.position_dependent and not legacy.config.position_dependent_phones
    assert legacy.phone_sets() == lang.phone_sets() and legacy.tree_roots() == lang.tree_roots()
    assert legacy.extra_questions() == lang.extra_questions()
    assert legacy.context_independent_phones == lang.context_independent_phones


def test_rerun_without_positions_removes_positional_files(tmp_path):
    prepare_lang(Lexicon(SMALL), tmp_path, LangConfig())
    lang = prepare_lang(Lexicon(SMALL), tmp_path, LangConfig(position_dependent_phones=False))
    assert not lang.position_dependent and not (tmp_path / "lexicon_pos.txt").exists()
    assert "AE" in lang.phone_id and "AE_B" not in lang.phone_id


def test_no_oov_word_and_marker_clash(tmp_path):
    lang = prepare_lang(Lexicon(SMALL), tmp_path / "a", LangConfig(oov_word=""))
    assert "SPN" not in lang.phone_id and _names(lang, lang.tree_roots())[0] == ["SIL"]
    assert _names(lang, lang.extra_questions())[0] == ["SIL"] and len(lang.extra_questions()) == 5
    with pytest.raises(ValueError, match="word-position marker"):
        prepare_lang(Lexicon({"X": [("A_B", "C")]}), tmp_path / "b", LangConfig())
    off = prepare_lang(Lexicon({"X": [("A_B", "C")]}), tmp_path / "c", LangConfig(position_dependent_phones=False))
    assert off.base_phone(off.phone_id["A_B"]) == "A_B"


@pytest.mark.parametrize("positions", [True, False])
def test_prepare_lang_tables_and_training_graph(tmp_path, positions):
    khg = pytest.importorskip("kaldi_hmm_gmm")
    lex, _ = cmudict_lexicon("ZERO ONE TWO THREE".split())
    lang = prepare_lang(lex, tmp_path, LangConfig(position_dependent_phones=positions))
    assert lang.phone_id["<eps>"] == 0 and lang.phone_id["SIL"] == 1 and lang.phone_id["SPN"] == 2
    assert all(lang.id_phone[i].startswith("#") for i in lang.disambig_phones)
    assert lang.id_phone[max(lang.phone_id.values())].startswith("#")
    assert {"<eps>", "!SIL", "<UNK>", "#0", "<s>", "</s>", "ZERO"} <= set(lang.word_id)
    topo = lang.topology()
    z = "Z_B" if positions else "Z"
    assert topo.num_pdf_classes(lang.phone_id["SIL"]) == 5 and topo.num_pdf_classes(lang.phone_id[z]) == 3
    assert lang.word_ids("ONE QWERTY") == [lang.word_id["ONE"], lang.word_id["<UNK>"]]
    reloaded = LangDir(tmp_path)
    assert reloaded.phone_id == lang.phone_id
    if positions:
        assert _words_of(lang, ["Z_B", "IH_I", "R_I", "OW_E", "W_B", "AH_I", "N_E"]) == ["ZERO", "ONE"]
    p2n = topo.get_phone_to_num_pdf_classes()
    for ctx in (khg.monophone_context_dependency(phones=topo.phones, phone2num_pdf_classes=p2n),
                # Kaldi's gmm-init-mono --shared-phones=phones/sets.int: a base phone's variants share pdfs
                khg.monophone_context_dependency_shared(phone_classes=lang.phone_sets(), phone2num_pdf_classes=p2n)):
        tm = khg.TransitionModel(ctx_dep=ctx, hmm_topo=topo)
        opts = khg.TrainingGraphCompilerOptions()
        gc = khg.TrainingGraphCompiler(trans_model=tm, ctx_dep=ctx, lex_fst=lang.lexicon_fst(),
                                       disambig_syms=lang.disambig_phones, opts=opts)
        assert gc.compile_graph_from_text(lang.word_ids("ZERO ONE")).num_states > 10
    num_base = len(lang.phone_sets())
    assert tm.num_pdfs == 2 * 5 + (num_base - 2) * 3  # per base phone, not per variant
