import pytest

import vlmkit.evaluation.docvqa as docvqa
import vlmkit.evaluation.generative as generative
from vlmkit.data.docworld import DocWorldConfig, generate_split
from vlmkit.data.records import RecordDataset
from vlmkit.evaluation.docvqa import docvqa_scores
from vlmkit.processing.chat import with_page_text


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docworld") / "test"
    generate_split(folder, DocWorldConfig(clean=True, kinds=("invoice",)), "test", 2, seed=5, workers=1)
    return RecordDataset(folder)


def test_page_text_prompt_joins_lines_before_the_question():
    assert with_page_text("What is the total?", ["Total due", "12.50"]) == (
        "Page text: Total due | 12.50\nQuestion: What is the total?"
    )


@pytest.mark.parametrize("source", ["truth", "ocr"])
def test_a_reader_that_copies_from_the_page_text_scores_1_and_0_without_it(pages, source, monkeypatch):
    """A stand-in model that finds the answer only in the page text it is given: the task must hand the page's
    text (ground truth, or what OCR reads) to the prompt, and only to the OCR-augmented prompt."""
    candidates: dict[str, set[str]] = {}
    for record in pages.records:
        for qa in record.qa:
            candidates.setdefault(qa.question, set()).add(qa.answer)

    def answer_from_page(model, prompts, images, batch_size, max_new_tokens):
        assert len(prompts) == len(images)
        found = []
        for prompt in prompts:
            text, _, question = (
                prompt.rpartition("\nQuestion: ") if prompt.startswith("Page text: ") else ("", "", prompt)
            )
            words = f" {text.replace('|', ' ')} "
            found.append(next((a for a in sorted(candidates[question]) if f" {a} " in words), ""))
        return found

    monkeypatch.setattr(generative, "answer_all", answer_from_page)
    monkeypatch.setattr(
        docvqa, "page_text_prompt", lambda model, question, lines, tokens: with_page_text(question, lines)
    )
    scores = docvqa_scores(None, pages, pages.records, batch_size=4, text_source=source)
    assert scores["questions"] == sum(len(r.qa) for r in pages.records)
    assert scores["anls_without_page_text"] == 0.0
    assert scores["anls"] > (0.99 if source == "truth" else 0.6)  # OCR may misread a few answers
    assert set(scores["per_type"]) == {qa.type for r in pages.records for qa in r.qa}


def test_a_long_page_is_cut_to_fit_the_decoder_s_context():
    from tiny_vlm import tiny_vlm
    from vlmkit.tasks.chat import chat_encoder
    from vlmkit.tasks.documents import page_text_prompt

    model = tiny_vlm()
    encoder = chat_encoder(model)
    lines = [f"line {i} of the page" for i in range(40)]

    def tokens(prompt: str) -> int:
        text = "<image>\n" + prompt
        return len(encoder.encode([{"role": "user", "content": text}], add_generation_prompt=True).input_ids)

    prompt = page_text_prompt(model, "What is it?", lines, answer_tokens=8)
    kept = prompt.split("Page text: ")[1].split("\nQuestion:")[0].split(" | ")
    assert 0 < len(kept) < len(lines) and kept == lines[: len(kept)]
    assert tokens(prompt) <= model.decoder.config.max_positions - 8
    longer = with_page_text("What is it?", lines[: len(kept) + 1])
    assert tokens(longer) > model.decoder.config.max_positions - 8  # the most lines that fit
    assert page_text_prompt(model, "What is it?", lines[:2], 8) == with_page_text("What is it?", lines[:2])
