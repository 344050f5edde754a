"""Recall@K: hand-computed cases, the documented tie rule, and agreement with open_clip's argsort
ranking (and a brute-force multi-positive search) on random matrices without ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlmkit.errors import InputError
from vlmkit.evaluation import best_positive_ranks, image_text_retrieval, recall_at_k


def test_perfect_similarity_scores_one() -> None:
    result = image_text_retrieval(torch.eye(6) + 0.01 * torch.arange(6.0), list(range(6)))
    assert result.image_to_text.recall == {1: 1.0, 5: 1.0, 10: 1.0}
    assert result.text_to_image.recall == {1: 1.0, 5: 1.0, 10: 1.0}
    assert result.image_to_text.mean_rank == 1.0
    assert result.text_to_image.median_rank == 1.0


def test_hand_computed_multi_positive() -> None:
    similarity = np.array(
        [
            [0.9, 0.8, 0.1, 0.2],  # positives {2, 3}: best is 3 (0.2), two negatives above -> rank 2
            [0.1, 0.5, 0.4, 0.3],  # positives {1}: rank 0
            [0.3, 0.2, 0.1, 0.0],  # positives {0, 2}: best is 0 -> rank 0
        ]
    )
    positives = [{2, 3}, [1], (0, 2, 2)]
    assert best_positive_ranks(similarity, positives).tolist() == [2, 0, 0]
    assert recall_at_k(similarity, positives, ks=(1, 2, 3)) == pytest.approx({1: 2 / 3, 2: 2 / 3, 3: 1.0})


def test_tie_rule_is_pessimistic_against_negatives_only() -> None:
    similarity = np.array([[0.5, 0.5, 0.5, 0.1]])
    assert best_positive_ranks(similarity, [[1]]).tolist() == [2]  # both tied negatives come first
    assert best_positive_ranks(similarity, [[0, 1]]).tolist() == [1]  # tied positives do not hurt
    assert best_positive_ranks(similarity, [[0, 1, 2]]).tolist() == [0]


def test_image_caption_layout_hand_computed() -> None:
    # 2 images, 4 captions: captions 0,1 describe image 0; captions 2,3 describe image 1.
    similarity = np.array(
        [
            [0.2, 0.9, 0.8, 0.1],  # image 0: best own caption (0.9) is first -> rank 0
            [0.7, 0.6, 0.5, 0.4],  # image 1: best own caption (0.5) after 0.7, 0.6 -> rank 2
        ]
    )
    result = image_text_retrieval(similarity, [0, 0, 1, 1], ks=(1, 2, 3))
    assert result.image_to_text.recall == pytest.approx({1: 0.5, 2: 0.5, 3: 1.0})
    assert result.image_to_text.mean_rank == pytest.approx(2.0)  # ranks 0 and 2, 1-based mean
    # caption columns: 0 -> image 1 ranks first (rank 1); 1 -> rank 0; 2 -> rank 1; 3 -> rank 0
    assert result.text_to_image.recall == pytest.approx({1: 0.5, 2: 1.0, 3: 1.0})
    assert result.text_to_image.median_rank == 1.0  # floor(median([1, 0, 1, 0])) + 1
    flat = result.as_dict()
    assert flat["i2t_R@1"] == 0.5 and flat["t2i_mean_rank"] == pytest.approx(1.5)


def test_matches_open_clip_ranking_and_brute_force_without_ties() -> None:
    generator = torch.Generator().manual_seed(3)
    num_images, per_image = 12, 3
    similarity = torch.randn(num_images, num_images * per_image, generator=generator)
    owners = [i // per_image for i in range(num_images * per_image)]
    result = image_text_retrieval(similarity, owners, ks=(1, 5, 10))

    # open_clip-style: position of the ground truth in a descending argsort (one positive per query).
    ranking = torch.argsort(similarity.T, dim=1, descending=True)
    t2i_ranks = torch.where(ranking == torch.tensor(owners)[:, None])[1].float()
    for k in (1, 5, 10):
        assert result.text_to_image.recall[k] == pytest.approx((t2i_ranks < k).float().mean().item())
    assert result.text_to_image.mean_rank == pytest.approx(t2i_ranks.mean().item() + 1)

    # Brute force for several positives: the first position in the sorted list holding a positive.
    order = torch.argsort(similarity, dim=1, descending=True).tolist()
    i2t_ranks = [min(order[i].index(c) for c in range(i * per_image, (i + 1) * per_image)) for i in range(num_images)]
    for k in (1, 5, 10):
        assert result.image_to_text.recall[k] == pytest.approx(np.mean(np.array(i2t_ranks) < k))


def test_chunked_rows_match_single_pass() -> None:
    rng = np.random.default_rng(0)
    similarity = rng.standard_normal((2100, 7)).astype(np.float32)
    positives = [[int(rng.integers(7))] for _ in range(2100)]
    ranks = best_positive_ranks(similarity, positives)
    expected = [(similarity[q] > similarity[q, p[0]]).sum() for q, p in enumerate(positives)]
    assert ranks.tolist() == expected


@pytest.mark.parametrize(
    ("similarity", "positives"),
    [
        (np.zeros((2, 3)), [[0]]),
        (np.zeros((2, 3)), [[0], []]),
        (np.zeros((2, 3)), [[0], [3]]),
        (np.zeros((0, 3)), []),
    ],
)
def test_bad_inputs_raise_input_error(similarity: np.ndarray, positives: list[list[int]]) -> None:
    with pytest.raises(InputError):
        recall_at_k(similarity, positives)


def test_caption_mapping_is_checked() -> None:
    with pytest.raises(InputError):
        image_text_retrieval(np.zeros((2, 3)), [0, 1])
    with pytest.raises(InputError):
        image_text_retrieval(np.zeros((2, 3)), [0, 1, 2])
    with pytest.raises(InputError):
        image_text_retrieval(np.zeros((2, 3)), [0, 0, 0])  # image 1 has no caption
