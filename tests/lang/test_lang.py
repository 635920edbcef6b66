"""Lang directory and OOV handling."""

import pytest

from asrdistill.lang.lang_dir import LangConfig, LangDir, add_disambig, prepare_lang
from asrdistill.lang.lexicon import Lexicon, OovError, check_oovs, cmudict_lexicon

pytest.importorskip("kaldifst")


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


def test_prepare_lang_tables_and_training_graph(tmp_path):
    khg = pytest.importorskip("kaldi_hmm_gmm")
    lex, _ = cmudict_lexicon("ZERO ONE TWO THREE".split())
    lang = prepare_lang(lex, tmp_path, LangConfig())
    assert lang.phone_id["<eps>"] == 0 and lang.phone_id["SIL"] == 1 and lang.phone_id["SPN"] == 2
    assert all(lang.id_phone[i].startswith("#") for i in lang.disambig_phones)
    assert lang.id_phone[max(lang.phone_id.values())].startswith("#")
    assert {"<eps>", "!SIL", "<UNK>", "#0", "<s>", "</s>", "ZERO"} <= set(lang.word_id)
    topo = lang.topology()
    assert topo.num_pdf_classes(lang.phone_id["SIL"]) == 5 and topo.num_pdf_classes(lang.phone_id["Z"]) == 3
    assert lang.word_ids("ONE QWERTY") == [lang.word_id["ONE"], lang.word_id["<UNK>"]]
    reloaded = LangDir(tmp_path)
    assert reloaded.phone_id == lang.phone_id
    ctx = khg.monophone_context_dependency(phones=topo.phones, phone2num_pdf_classes=topo.get_phone_to_num_pdf_classes())
    tm = khg.TransitionModel(ctx_dep=ctx, hmm_topo=topo)
    opts = khg.TrainingGraphCompilerOptions()
    gc = khg.TrainingGraphCompiler(trans_model=tm, ctx_dep=ctx, lex_fst=lang.lexicon_fst(),
                                   disambig_syms=lang.disambig_phones, opts=opts)
    assert gc.compile_graph_from_text(lang.word_ids("ZERO ONE")).num_states > 10
