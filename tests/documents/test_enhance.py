import numpy as np
import pytest
from PIL import Image

from doc_scans import clean_page
from vlmkit.documents.enhance import PageGeometry, estimate_skew, flatten_lighting, straighten, upscale_for
from vlmkit.documents.types import Line, Word


@pytest.mark.parametrize("angle", [-3.0, 0.0, 1.5])
def test_skew_is_found_within_half_a_degree(angle):
    page = clean_page().convert("RGB").rotate(angle, expand=True, fillcolor=(255, 255, 255))
    assert estimate_skew(page) == pytest.approx(angle, abs=0.5)


def test_straightened_boxes_map_back_onto_the_skewed_page():
    page = clean_page().rotate(2.0, expand=True, fillcolor=255)
    upright, geometry = straighten(page, page.size)
    assert geometry.angle == pytest.approx(2.0, abs=0.5)
    # the ink of the upright image, mapped back, must land on the ink of the skewed page
    ink = np.argwhere(np.asarray(upright) < 128)
    y0, x0 = ink.min(axis=0)
    y1, x1 = ink.max(axis=0)
    back = geometry.to_page((float(x0), float(y0), float(x1), float(y1)))
    page_ink = np.argwhere(np.asarray(page) < 128)
    truth = (page_ink[:, 1].min(), page_ink[:, 0].min(), page_ink[:, 1].max(), page_ink[:, 0].max())
    assert np.allclose(back, truth, atol=12), (back, truth)


def test_scale_is_undone_and_boxes_are_clipped_to_the_page():
    geometry = PageGeometry((100, 50), (100, 50), scale=2.0)
    assert geometry.to_page((20, 10, 400, 60)) == (10, 5, 100, 30)


def test_flattening_evens_out_a_lighting_gradient():
    clean = np.asarray(clean_page(), np.float32)
    lit = Image.fromarray((clean * np.linspace(1.0, 0.5, clean.shape[1])[None, :]).astype(np.uint8))
    paper = clean == 255
    quarter = clean.shape[1] // 4

    def paper_left_minus_right(pixels: np.ndarray) -> float:
        left = pixels[:, :quarter][paper[:, :quarter]].mean()
        right = pixels[:, -quarter:][paper[:, -quarter:]].mean()
        return float(left - right)

    assert paper_left_minus_right(np.asarray(lit, np.float32)) > 80
    assert abs(paper_left_minus_right(np.asarray(flatten_lighting(lit), np.float32))) < 10


def test_small_text_is_scaled_up_and_large_text_left_alone():
    def lines(height: float) -> list[Line]:
        return [Line((Word("a", (0, 0, 10, height)),)) for _ in range(3)]

    assert upscale_for(lines(14)) == pytest.approx(2.0)
    assert upscale_for(lines(40)) == 1.0
    assert upscale_for(lines(24)) == 1.0  # x1.17: not worth a second reading
    assert upscale_for(lines(2)) == 4.0
    assert upscale_for([]) == 1.0
