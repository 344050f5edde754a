import json

from PIL import Image

from doc_scans import LINES, clean_page, write_text_pdf
from vlmkit.cli import main


def test_read_prints_the_text_and_json_and_draws_regions(tmp_path, capsys):
    path = tmp_path / "line.png"
    clean_page("Total due 128.50", size=28).save(path)
    out = tmp_path / "regions.png"
    assert main(["read", str(path), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == "Total due 128.50"
    drawn = Image.open(out)
    assert drawn.size == Image.open(path).size
    assert main(["read", str(path), "--json"]) == 0
    (page,) = json.loads(capsys.readouterr().out)["pages"]
    assert page["source"] == "ppocr" and [w["text"] for w in page["lines"][0]["words"]] == ["Total", "due", "128.50"]


def test_read_draws_one_picture_per_page_of_a_pdf(tmp_path, capsys):
    path = tmp_path / "report.pdf"
    write_text_pdf(path, pages=2)
    assert main(["read", str(path), "--out", str(tmp_path / "drawn.png")]) == 0
    assert capsys.readouterr().out.rstrip("\n").split("\f") == ["\n".join(LINES)] * 2
    assert (tmp_path / "drawn-1.png").is_file() and (tmp_path / "drawn-2.png").is_file()


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["read", str(tmp_path / "missing.pdf")]) == 2
    assert capsys.readouterr().err.strip().endswith("missing.pdf: file not found")
    (tmp_path / "fake.pdf").write_bytes(b"%PDF-1.4 nothing else")
    assert main(["read", str(tmp_path / "fake.pdf"), "--max-pages", "0"]) == 2
    assert "--max-pages: expected at least 1" in capsys.readouterr().err
    assert main(["read", str(tmp_path / "fake.pdf")]) == 2
    assert "fake.pdf: not a readable PDF" in capsys.readouterr().err
