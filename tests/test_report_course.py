"""The report a grader reads (report/course.py): one heading per question of the course, in its order, each opening
with a direct answer of 2 to 5 sentences; a body of at most 6,000 words before the appendices, without the
project's jargon and without references to documents outside the report. Checked on the committed report and, on
made-up text, that each check fails when it should."""

from __future__ import annotations

from pathlib import Path

import pytest

from report import course

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "report" / "report.md"


@pytest.fixture(scope="module")
def committed() -> str:
    return COMMITTED.read_text()


def test_the_course_list_is_the_courses_numbering():
    labels = [label for label, _ in course.QUESTIONS]
    expected = ([f"Q1 theory {k}" for k in range(1, 6)] + [f"Q1 implementation {k}" for k in range(1, 8)]
                + [f"Q2 theory {k}" for k in range(1, 6)] + [f"Q2 implementation {k}" for k in range(1, 6)])
    assert labels == expected


def test_the_committed_report_has_one_heading_per_question_in_order(committed):
    assert course.question_headings(committed) == [course.heading(label) for label, _ in course.QUESTIONS]


def test_each_question_opens_with_a_direct_answer_of_two_to_five_sentences(committed):
    counts = course.short_answers(committed)
    assert len(counts) == len(course.QUESTIONS)
    assert {title: n for title, n in counts.items() if not 2 <= n <= 5} == {}


def test_the_body_keeps_the_word_limit_the_jargon_list_and_no_outside_reference(committed):
    assert course.word_count(committed) <= course.MAX_BODY_WORDS
    assert course.jargon(committed) == []
    assert course.outside_references(committed) == []
    assert "@fig:" not in committed and "@tab:" not in committed and "@app:" not in committed


def test_the_checks_fail_on_text_that_breaks_them():
    text = ("# T\n\n## Q1\n\n### Q1 theory 2: x\n\nOne. Two.\n\n### Q1 theory 1: y\n\nThe shipped model's floor, "
            "see docs/theory.md item 10. " + "word " * 50 + "\n\n## Appendix A: glossary\n\n" + "word " * 9000)
    assert course.question_headings(text) == ["Q1 theory 2: x", "Q1 theory 1: y"]
    assert set(course.jargon(text)) >= {"shipped", "floor", "item \\d+"}
    assert {"docs/", ".md", "item 10"} <= set(course.outside_references(text))
    assert 50 < course.word_count(text) < 100  # the appendix does not count
    assert course.short_answers(text)["Q1 theory 2: x"] == 2
    assert course.sentences("It is $x_t = a.b$ and e.g. 0.5 of it. Next one! Last?") == 3


def test_display_math_tables_and_code_are_not_words():
    text = "Intro words here.\n\n$$\na + b = c\n$$\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```bash\nls -l\n```\n"
    assert course.word_count(text) == 3
