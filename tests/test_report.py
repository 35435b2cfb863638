"""The report document: numbering, captions, commands, and a real browser that loads every image."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from report.browser import find_chromium, image_status, screenshot
from report.checks import broken_links, dangling_references, uncaptioned
from report.document import Report, ReportError, _html_table


def _png(path, seed):
    rgb = np.random.default_rng(seed).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


@pytest.fixture
def report_dir(tmp_path):
    r = Report("Test report")
    r.heading("Section")
    r.text("Some `code` and text.")
    r.figure(_png(tmp_path / "a.png", 0), "First figure.", command="python -m something --flag")
    r.table([{"method": "ddpm", "time_s": 1.23456}, {"method": "ddim", "time_s": 0.5}], "A table.", command="cmd")
    r.figure(_png(tmp_path / "b.png", 1), "Second figure.")
    md, page = r.write(tmp_path / "out")
    return tmp_path / "out", md, page


def test_figures_and_tables_are_numbered_and_captioned(report_dir):
    _, md, page = report_dir
    text = md.read_text()
    assert "*Figure 1. First figure.*" in text and "*Figure 2. Second figure.*" in text
    assert "*Table 1. A table.*" in text and "| ddpm | 1.235 |" in text
    assert "python -m something --flag" in text
    html = page.read_text()
    assert html.count('<figure id="fig-') == 2 and html.count('<figure class="table"') == 1
    assert "Table 1. A table." in html


def test_references_resolve_to_the_numbers_the_builder_gives(tmp_path):
    """Prose names figures and tables by label; the builder numbers them, also forward references."""
    r = Report("Refs")
    r.text("See @fig:second and @tab:t, then @fig:first.")
    r.figure(_png(tmp_path / "a.png", 0), "One.", label="first")
    r.table([{"a": 1}], "T.", label="t")
    r.figure(_png(tmp_path / "b.png", 1), "Two, after @fig:first.", label="second")
    md, _ = r.write(tmp_path / "out")
    text = md.read_text()
    assert "See Figure 2 and Table 1, then Figure 1." in text and "*Figure 2. Two, after Figure 1.*" in text
    assert "@fig" not in text and "@tab" not in text


def test_a_reference_to_nothing_or_a_label_used_twice_is_an_error(tmp_path):
    r = Report("Bad")
    r.text("As @fig:missing shows.")
    with pytest.raises(ReportError, match="@fig:missing"):
        r.write(tmp_path / "out")
    assert not (tmp_path / "out").exists()
    r.figure(_png(tmp_path / "a.png", 0), "One.", label="x")
    with pytest.raises(ReportError, match="used twice"):
        r.figure(_png(tmp_path / "a.png", 0), "Again.", label="x")


def test_each_command_is_printed_once_in_the_appendix_and_captions_link_to_it(tmp_path):
    r = Report("Commands")
    for k in range(3):
        r.figure(_png(tmp_path / f"{k}.png", k), f"Fig {k}.", command="python -m a --long" if k < 2 else "python -m b")
    md, page = r.write(tmp_path / "out")
    text = md.read_text()
    assert text.count("python -m a --long") == 1 and text.count("python -m b") == 1
    assert text.count("[Command C1](#cmd-C1)") == 2 and "[Command C2](#cmd-C2)" in text
    assert page.read_text().count('id=\'cmd-C1\'') == 1


def test_two_markdown_tables_in_one_block_keep_both_header_rows():
    html = _html_table("| a | b |\n|---|---:|\n| 1 | 2 |\n\n| c | d |\n|:--|---|\n| 3 | 4 |")
    assert html.count("<th>") == 4 and "<th>c</th>" in html and "<td>3</td>" in html
    assert "---" not in html


def test_rewriting_replaces_the_folder_whole(tmp_path, report_dir):
    out, _, _ = report_dir
    r = Report("Again")
    r.text("only text")
    r.write(out)
    assert not list((out / "figures").iterdir()) and "Again" in (out / "report.md").read_text()


@pytest.mark.skipif(find_chromium() is None and not os.environ.get("SPRITEDIFF_REQUIRE_BROWSER"),
                    reason="Chromium is not installed (apt-get install chromium)")
def test_every_image_loads_in_headless_chromium(report_dir, tmp_path):
    out, _, page = report_dir
    assert image_status(page, tmp_path / "profile") == (2, 0)
    (out / "figures" / next(iter(sorted((out / "figures").iterdir()))).name).unlink()  # break one image
    assert image_status(page, tmp_path / "profile") == (2, 1)
    shot = screenshot(page, tmp_path / "shot.png", tmp_path / "profile")
    assert Image.open(shot).size == (1100, 1500)


def test_markdown_images_are_copied_beside_the_report_and_links_point_into_docs(tmp_path):
    """docs/theory.md quotes figures by paths relative to docs/: the report copies them into its own figures/
    (a self-contained folder), while ordinary links are prefixed to reach docs/; a missing image is an error."""
    docs = tmp_path / "docs"
    (docs / "figures" / "x").mkdir(parents=True)
    _png(docs / "figures" / "x" / "p.png", 2)
    r = Report("T")
    r.markdown("See [the guide](guide.md).\n\n![a picture](figures/x/p.png)", "../docs/", source_dir=docs)
    md, page = r.write(tmp_path / "out")
    assert (tmp_path / "out" / "figures" / "md_figures_x_p.png").is_file()
    assert "![a picture](figures/md_figures_x_p.png)" in md.read_text()
    assert "[the guide](../docs/guide.md)" in md.read_text()
    html = page.read_text()
    assert 'src="figures/md_figures_x_p.png"' in html and 'href="../docs/guide.md"' in html
    r = Report("T")
    r.markdown("![gone](figures/none.png)", source_dir=docs)
    with pytest.raises(FileNotFoundError, match="none.png"):
        r.write(tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


ROOT = Path(__file__).resolve().parents[1]
needs_browser = pytest.mark.skipif(find_chromium() is None and not os.environ.get("SPRITEDIFF_REQUIRE_BROWSER"),
                                   reason="Chromium is not installed (apt-get install chromium)")


@needs_browser
def test_the_committed_report_shows_every_figure(tmp_path):
    page = ROOT / "docs" / "report" / "report.html"
    images, broken = image_status(page, tmp_path / "profile")
    figures = len(list((ROOT / "docs" / "report" / "figures").iterdir()))
    assert images == figures >= 8 and broken == 0


SECTIONS = ("Q1. Diffusion models", "Q1 theory 1: the forward process in one shot",
            "Q1 implementation 6: sampling time",
            "Q1 implementation 7: FID of DDPM against DDIM", "Q2. Score-based models",
            "Q2 theory 3: noise perturbation", "Q2 implementation 5: the noise-conditional model",
            "Appendix A: glossary", "the commands")


@needs_browser
def test_the_report_command_end_to_end_with_pdf(tmp_path):
    """`python -m report --quick --pdf` on the shipped model: every part runs; every decimal number in its prose is
    one this run wrote or a declared constant; every Figure/Table it names exists, every figure and table is
    numbered and captioned, every link and image resolves (and loads in the browser); the theory's formulas are
    MathML; the PDF has its pages and nothing runs off them (the end of every command and the last column of every
    table are in pdftotext's output)."""
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "report", "--quick", "--pdf", "--student_id", "810101504", "--out",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=1500,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "report.work" / "numbers.json").read_text())["unsourced"] == []
    md = out / "report.md"
    text = md.read_text()
    for part in (*SECTIONS, "student number 810101504"):
        assert part in text, part
    assert dangling_references(text) == [] and uncaptioned(text) == [] and broken_links(md) == []
    html = (out / "report.html").read_text()
    assert html.count("<math") > 100 and "$$" not in html
    images, broken = image_status(out / "report.html", tmp_path / "profile")
    assert images >= 12 and broken == 0
    pdf = out / "report.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:"))) >= 8
    pdf_text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = "".join(pdf_text.split())
    for part in SECTIONS:
        assert "".join(part.split()) in flat, part
    commands = re.findall(r"^```bash\n(.+?)\n```", text, re.M)
    # pdftotext joins a line that ends in "-" to the next without it: compare without hyphens
    assert commands and all("".join(c.split()).replace("-", "")[-30:] in flat.replace("-", "") for c in commands)
    headers = [lines[i - 1] for lines in [text.splitlines()] for i, line in enumerate(lines)
               if re.match(r"^\|(\s*:?-+:?\s*\|)+$", line)]
    assert headers
    for header in headers:
        last = header.strip().strip("|").split("|")[-1].strip()
        assert "".join(last.split()) in flat, last


def test_recompressing_a_pdf_keeps_every_decoded_stream_and_makes_it_smaller(tmp_path):
    """report.browser.recompress_pdf on a PDF whose page content is stored uncompressed: the file shrinks, and the
    page count and every page's decoded content stream are byte for byte the same."""
    import pikepdf

    from report.browser import recompress_pdf

    src = tmp_path / "printed.pdf"
    pdf = pikepdf.new()
    for i in range(3):
        line = b"BT /F1 9 Tf 20 %d Td (line %d of page %d, the same words again) Tj ET\n"
        content = b"".join(line % (800 - 12 * k, k, i) for k in range(60))
        page = pdf.add_blank_page(page_size=(595, 842))
        page.obj.Contents = pikepdf.Stream(pdf, content)
    pdf.save(src, compress_streams=False)
    out = recompress_pdf(src, tmp_path / "small.pdf")
    assert out.stat().st_size < 0.5 * src.stat().st_size
    with pikepdf.open(src) as a, pikepdf.open(out) as b:
        assert len(a.pages) == len(b.pages) == 3
        for pa, pb in zip(a.pages, b.pages, strict=True):
            assert pa.obj.Contents.read_bytes() == pb.obj.Contents.read_bytes()
