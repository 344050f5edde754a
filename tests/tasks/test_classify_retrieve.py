"""Zero-shot classification and retrieval: the protocol's arithmetic on a tiny model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from testkit import tiny_model
from vlmkit.errors import InputError
from vlmkit.tasks import classify, embed_images, embed_texts, label_embeddings, retrieve
from vlmkit.tasks.classify import MAX_TEMPLATE_CHARS, MAX_TEMPLATES, fill


def test_label_embedding_is_renormalised_template_mean():
    model = tiny_model()
    templates = ["a photo of a {}.", "a drawing of a {}."]
    got = label_embeddings(model, ["cat", "dog"], templates)
    prompts = embed_texts(
        model, ["a photo of a cat.", "a drawing of a cat.", "a photo of a dog.", "a drawing of a dog."]
    )
    expected = F.normalize(prompts.view(2, 2, -1).mean(1), dim=-1)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_classify_ranks_by_the_models_probabilities(photo_files, family):
    model = tiny_model(family)
    labels = ["cat", "dog", "red circle"]
    results = classify(model, photo_files, labels, top_k=2)
    assert len(results) == len(photo_files) and all(len(r) == 2 for r in results)
    with torch.no_grad():
        logits = model.similarity(embed_images(model, photo_files), label_embeddings(model, labels))
        probabilities = model.probabilities(logits)
    if family == "clip":
        torch.testing.assert_close(probabilities.sum(-1), torch.ones(len(photo_files)))
    for row, predictions in zip(probabilities, results, strict=True):
        best = row.argsort(descending=True)[:2].tolist()
        assert [p.label for p in predictions] == [labels[i] for i in best]
        assert predictions[0].probability == pytest.approx(float(row[best[0]]), abs=1e-5)


def test_classify_rejects_bad_labels_and_templates(photo_files):
    model = tiny_model()
    with pytest.raises(InputError, match="label list is empty"):
        classify(model, photo_files, [])
    with pytest.raises(InputError, match="placeholder"):
        classify(model, photo_files, ["cat"], templates=["a photo"])


def test_templates_are_filled_literally_not_formatted():
    model = tiny_model()
    templates = ["{{}}{:>5000000}", "{} {1}", "{}{__class__}", "a {} is a {}."]
    assert [fill(t, "cat") for t in templates] == ["{cat}{:>5000000}", "cat {1}", "cat{__class__}", "a cat is a cat."]
    got = label_embeddings(model, ["cat"], templates)  # no KeyError, no IndexError, no 5 MB string
    expected = F.normalize(embed_texts(model, [fill(t, "cat") for t in templates]).mean(0, keepdim=True), dim=-1)
    torch.testing.assert_close(got, expected)


def test_template_count_and_length_are_capped():
    model = tiny_model()
    with pytest.raises(InputError, match=f"at most {MAX_TEMPLATES} templates"):
        label_embeddings(model, ["cat"], ["a {}."] * (MAX_TEMPLATES + 1))
    with pytest.raises(InputError, match=f"at most {MAX_TEMPLATE_CHARS} characters"):
        label_embeddings(model, ["cat"], ["{}" + "!" * MAX_TEMPLATE_CHARS])
    with pytest.raises(InputError, match="placeholder"):
        label_embeddings(model, ["cat"], [])


def test_retrieve_orders_by_cosine_and_breaks_ties_by_index():
    candidates = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8]]), dim=-1)
    hits = retrieve(torch.tensor([[1.0, 0.0]]), candidates, k=3)[0]
    assert [h.index for h in hits] == [0, 2, 3]
    assert hits[2].score == pytest.approx(0.6)


def test_missing_image_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"nope\.png"):
        embed_images(tiny_model(), [tmp_path / "nope.png"])
