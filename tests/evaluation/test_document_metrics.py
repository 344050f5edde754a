import pytest

from vlmkit.evaluation.documents import EditCounts, anls, anls_score, cer, field_f1, ocrbench_correct, wer, word_recall


def test_cer_and_wer_count_edits_over_the_reference_and_ignore_line_breaks():
    assert cer("kitten", "sitting") == pytest.approx(3 / 7)
    assert cer("total\n 12.50", "total 12.50") == 0.0
    assert wer("the cat sat", "the cat sat down") == pytest.approx(1 / 4)
    assert cer("", "") == 0.0 and cer("abc", "") == 3.0


def test_word_recall_is_a_multiset_ignoring_case_and_outer_punctuation():
    assert word_recall("The the cat.", "the THE the cat") == pytest.approx(3 / 4)
    assert word_recall("(Here,) background", "Here, background.") == 1.0


def test_anls_follows_docvqa_threshold_and_best_gold_answer():
    assert anls_score("12.50", ["12.50"]) == 1.0
    assert anls_score("  12.5O ", ["12.50"]) == pytest.approx(1 - 1 / 5)  # one substitution in five
    assert anls_score("twelve", ["12.50"]) == 0.0  # NL >= 0.5 scores 0
    assert anls_score("ACME Ltd", ["acme ltd.", "ACME"]) == pytest.approx(1 - 1 / 9)
    assert anls(["a", "b"], [["a"], ["c"]]) == 0.5
    with pytest.raises(ValueError):
        anls(["a"], [["a"], ["b"]])


def test_ocrbench_counts_an_answer_contained_in_the_prediction():
    assert ocrbench_correct("The total is 12.50 dollars", ["12.50"])
    assert not ocrbench_correct("12.5", ["12.50"])


def test_field_f1_matches_pairs_per_document():
    scores = field_f1([{"Total": "12.50", "date": "2026-03-01"}], [{"total": "12.50", "date": "2026-03-02"}])
    assert scores == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert field_f1([{}], [{"a": "1"}])["f1"] == 0.0


def test_summed_counts_give_micro_averages():
    pages = [EditCounts.of("abc", "abd"), EditCounts.of("hello there", "hello there")]
    assert EditCounts.summed(pages).cer == pytest.approx(1 / 14)  # not the mean of 1/3 and 0
    assert EditCounts.summed([]) == EditCounts(0, 0, 0, 0)
