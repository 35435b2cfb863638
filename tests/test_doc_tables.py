"""Quoted benchmark tables in the docs equal their committed sources (python -m report.doc_tables)."""

import pytest

from report.doc_tables import ROOT, documents, refresh


def test_a_quoted_table_is_replaced_by_its_source_and_a_missing_source_is_an_error(tmp_path):
    (tmp_path / "t.md").write_text("| a |\n| --- |\n| 2 |\n")
    doc = "before\n<!-- table: t.md -->\n| a |\n| --- |\n| 1 |\n<!-- end table -->\nafter\n"
    assert refresh(doc, tmp_path) == "before\n<!-- table: t.md -->\n| a |\n| --- |\n| 2 |\n<!-- end table -->\nafter\n"
    with pytest.raises(FileNotFoundError, match="gone.md"):
        refresh("<!-- table: gone.md -->\n<!-- end table -->", tmp_path)
    unclosed = "<!-- table: t.md -->\nprose\n<!-- table: t.md -->\n| old |\n<!-- end table -->\n"
    with pytest.raises(ValueError, match="without its"):  # never eats the prose up to the next block's end
        refresh(unclosed, tmp_path)


def test_every_quoted_table_in_the_docs_is_current():
    stale = [doc.relative_to(ROOT) for doc in documents() if refresh(doc.read_text()) != doc.read_text()]
    assert not stale, f"run python -m report.doc_tables: {stale}"
