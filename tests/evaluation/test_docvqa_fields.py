"""``vlmkit eval``'s key-value field extraction and page reading tasks, with stand-in models whose answers are
known, so the scores they must get are known too."""

from types import SimpleNamespace

import pytest

import vlmkit.evaluation.docvqa as docvqa
import vlmkit.evaluation.generative as generative
from vlmkit.data.docworld import DocWorldConfig, generate_split
from vlmkit.data.records import RecordDataset
from vlmkit.evaluation.docvqa import PageTexts, document_tasks, field_question, field_scores, vlm_reading_scores
from vlmkit.processing.chat import OCR_PROMPT, with_page_text


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docworld_fields") / "test"
    generate_split(folder, DocWorldConfig(clean=True, kinds=("invoice", "receipt")), "test", 2, seed=7, workers=1)
    return RecordDataset(folder)


@pytest.fixture
def plain_prompts(monkeypatch):
    monkeypatch.setattr(
        docvqa, "page_text_prompt", lambda model, question, lines, tokens: with_page_text(question, lines)
    )


def _fields_answerer(wrong: set[str]):
    """Answers each field question with the value of that field found in the prompt's page text, except
    for the fields in ``wrong`` (answered "nothing")."""

    def answer(model, prompts, images, batch_size, max_new_tokens):
        out = []
        for prompt in prompts:
            text, _, question = prompt.rpartition("\nQuestion: ")
            field = question.removeprefix("What is the ").removesuffix("?")
            out.append("nothing" if field in wrong else answer.values[(text, field)])
        return out

    return answer


def test_fields_read_from_the_page_score_1_and_wrong_ones_lower_the_f1(pages, plain_prompts, monkeypatch):
    texts = PageTexts(pages, "truth")
    answerer = _fields_answerer(set())
    answerer.values = {
        (f"Page text: {' | '.join(texts.lines(r))}", k): v for r in pages.records for k, v in r.extra["fields"].items()
    }
    monkeypatch.setattr(generative, "answer_all", answerer)
    perfect = field_scores(None, pages, pages.records, 4, texts)
    total = sum(len(r.extra["fields"]) for r in pages.records)
    assert perfect["fields"] == total
    assert perfect["f1"] == perfect["anls"] == perfect["ocrbench_accuracy"] == 1.0

    wrong = _fields_answerer({"total", "tax"})
    wrong.values = answerer.values
    monkeypatch.setattr(generative, "answer_all", wrong)
    scores = field_scores(None, pages, pages.records, 4, texts)
    misses = sum(("total" in r.extra["fields"]) + ("tax" in r.extra["fields"]) for r in pages.records)
    assert scores["recall"] == pytest.approx((total - misses) / total)
    assert scores["precision"] == pytest.approx((total - misses) / total)  # "nothing" is a wrong pair
    assert scores["per_field_anls"]["total"] == 0.0


def test_empty_answers_are_no_pairs(pages, plain_prompts, monkeypatch):
    monkeypatch.setattr(generative, "answer_all", lambda model, prompts, *_, **__: [""] * len(prompts))
    scores = field_scores(None, pages, pages.records, 4, PageTexts(pages, "truth"))
    assert scores["precision"] == scores["recall"] == scores["f1"] == 0.0


def test_field_question_wording():
    assert field_question("invoice number") == "What is the invoice number?"


def test_reading_scores_cer_against_the_page_text_case_folded_too(pages, monkeypatch):
    from tiny_vlm import tiny_vlm

    truths = ["\n".join(PageTexts(pages, "truth").lines(r)) for r in pages.records]
    seen = {}

    def read(model, prompts, images, batch_size, max_new_tokens):
        seen.update(prompts=prompts, tokens=max_new_tokens)
        return [t.upper() for t in truths]

    monkeypatch.setattr(generative, "answer_all", read)
    model = tiny_vlm()
    scores = vlm_reading_scores(model, pages, pages.records, 4)
    assert seen["prompts"] == [OCR_PROMPT] * len(truths)
    assert 0 < seen["tokens"] < model.decoder.config.max_positions  # room left after the prompt
    assert scores["cer_casefold"] == 0.0 and scores["wer_casefold"] == 0.0
    assert scores["cer"] > 0.3 and scores["pages"] == len(truths)


def test_document_tasks_read_each_page_once(pages, plain_prompts, monkeypatch):
    calls = []

    def fake_read(image, engine):
        calls.append(engine)
        return SimpleNamespace(lines=[SimpleNamespace(text="Total 1.00")])

    monkeypatch.setattr(docvqa, "read_image", fake_read)
    monkeypatch.setattr(generative, "answer_all", lambda model, prompts, *_, **__: ["1.00"] * len(prompts))
    tasks = document_tasks(None, pages, pages.records, 4)
    assert set(tasks) == {"docvqa", "fields", "reading"}
    tasks["docvqa"]()
    tasks["fields"]()
    assert len(calls) == len(pages.records)


def test_vlmkit_eval_on_pages_adds_the_document_tasks(pages):
    from tiny_vlm import tiny_vlm

    tasks = generative.generative_tasks(tiny_vlm(), pages, pages.records, 4)
    assert {"docvqa", "fields", "reading"} <= set(tasks) and "vqa" in tasks
