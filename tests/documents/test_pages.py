import pytest

from doc_scans import LINES, clean_page, write_text_pdf
from vlmkit.documents.pages import PDF_DPI, open_pages
from vlmkit.errors import InputError


def test_a_pdf_text_layer_is_read_exactly_with_boxes_on_the_rendered_page(tmp_path):
    path = tmp_path / "report.pdf"
    write_text_pdf(path)
    (page,) = open_pages(path)
    assert page.image.size == (round(4 * PDF_DPI), round(3 * PDF_DPI))
    assert [line.text for line in page.text_layer] == LINES
    first = page.text_layer[0].box  # figure.text at x=0.1, baseline at y=0.8: 0.6 in below the top edge
    assert 0.1 * 4 * PDF_DPI - 5 < first[0] < 0.1 * 4 * PDF_DPI + 5
    baseline = 0.2 * 3 * PDF_DPI
    assert baseline - 14 / 72 * PDF_DPI - 5 < first[1] < baseline < first[3] < baseline + 0.3 * 14 / 72 * PDF_DPI


def test_a_scanned_pdf_has_no_text_layer(tmp_path):
    path = tmp_path / "scan.pdf"
    clean_page().convert("RGB").save(path, format="PDF", resolution=100)
    (page,) = open_pages(path)
    assert page.text_layer is None and page.image.width > 100


def test_multi_page_tiff_gives_every_page_and_the_limit_holds(tmp_path):
    path = tmp_path / "pages.tiff"
    first, second = clean_page("first page"), clean_page("second page, wider than the first")
    first.save(path, save_all=True, append_images=[second])
    pages = list(open_pages(path))
    assert [p.number for p in pages] == [1, 2] and pages[1].image.size == second.size
    assert pages[0].image.mode == "RGB"
    with pytest.raises(InputError, match="2 pages exceeds the limit of 1"):
        list(open_pages(path, max_pages=1))
    with pytest.raises(InputError, match=r"page 1 is .* over the limit of 100"):
        list(open_pages(path, max_pixels=100))


def test_encrypted_broken_and_missing_files_are_one_line(tmp_path):
    import pypdf

    plain = tmp_path / "plain.pdf"
    write_text_pdf(plain)
    writer = pypdf.PdfWriter(clone_from=str(plain))
    writer.encrypt("secret")
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as handle:
        writer.write(handle)
    with pytest.raises(InputError, match=r"locked\.pdf: encrypted"):
        list(open_pages(locked))
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(plain.read_bytes()[:200])
    with pytest.raises(InputError, match=r"broken\.pdf: not a readable PDF"):
        list(open_pages(broken))
    with pytest.raises(InputError, match="file not found"):
        list(open_pages(tmp_path / "nothing.png"))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(InputError, match=r"junk\.png: not a readable image"):
        list(open_pages(junk))


def test_a_pdf_too_large_to_render_is_refused(tmp_path):
    path = tmp_path / "report.pdf"
    write_text_pdf(path, pages=3)
    with pytest.raises(InputError, match="3 pages exceeds the limit of 2"):
        list(open_pages(path, max_pages=2))
    with pytest.raises(InputError, match=r"page 1 .* exceeds 1000 pixels"):
        list(open_pages(path, max_pixels=1000))
