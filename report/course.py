"""The course's questions, in its order, and the rules a written answer keeps: one heading per question, a body
of at most :data:`MAX_BODY_WORDS` words before the appendices, none of the project's own jargon (:data:`JARGON`)
and no reference to a document outside the report (tests/test_report_course.py checks a written report)."""

from __future__ import annotations

import re

# (label, title): one heading "label: title" per question, in the course's order.
QUESTIONS: tuple[tuple[str, str], ...] = (
    ("Q1 theory 1", "the forward process in one shot"),
    ("Q1 theory 2", "the reverse conditional, and why training uses the posterior"),
    ("Q1 theory 3", "the three terms of the variational bound"),
    ("Q1 theory 4", "when DDIM is DDPM"),
    ("Q1 theory 5", "ES-DDPM: early-stopped DDPM"),
    ("Q1 implementation 1", "the linear noise schedule"),
    ("Q1 implementation 2", "the forward process in one step, perturb_input"),
    ("Q1 implementation 3", "training"),
    ("Q1 implementation 4", "sampling with DDPM (Algorithm 2)"),
    ("Q1 implementation 5", "sampling with DDIM"),
    ("Q1 implementation 6", "sampling time"),
    ("Q1 implementation 7", "FID of DDPM against DDIM"),
    ("Q2 theory 1", "the normaliser of an energy-based model, and how the score avoids it"),
    ("Q2 theory 2", "sliced score matching"),
    ("Q2 theory 3", "noise perturbation: why, and how it differs from DDPM's noising"),
    ("Q2 theory 4", "Langevin dynamics"),
    ("Q2 theory 5", "why annealing is needed"),
    ("Q2 implementation 1", "the student's mixture and its analytic score"),
    ("Q2 implementation 2", "denoising score matching at a fixed sigma"),
    ("Q2 implementation 3", "sampling by deterministic ascent"),
    ("Q2 implementation 4", "sampling by Langevin dynamics"),
    ("Q2 implementation 5", "the noise-conditional model and annealed Langevin dynamics"),
)

MAX_BODY_WORDS = 6000

# Words of the project's own vocabulary that a student's answer would not use (whole words, any case).
JARGON: tuple[str, ...] = ("shipped", "stock", "bare loop", "half A", "half B", "halves", "floor", "class gap",
                           "reported model", "placeholder row", "item \\d+", "section \\d+")

# A reference to something outside the report: another document of the project, or its numbered items.
OUTSIDE = re.compile(r"docs/|\.md\b|\bitems? \d+\b|\bimplementation item\b|\bsection \d+\b", re.I)

APPENDIX = re.compile(r"^## Appendix", re.M)


def heading(label: str) -> str:
    """The heading of question ``label``: ``"Q1 theory 1: the forward process in one shot"``."""
    return f"{label}: {dict(QUESTIONS)[label]}"


def body(markdown: str) -> str:
    """The report's body: everything before the first appendix."""
    m = APPENDIX.search(markdown)
    return markdown[: m.start()] if m else markdown


def question_headings(markdown: str) -> list[str]:
    """The level-3 headings of the body, in order."""
    return re.findall(r"^### (.+)$", body(markdown), re.M)


def prose(markdown: str) -> str:
    """What a reader reads as words: the text without display math, code blocks, tables, images and anchors."""
    text = re.sub(r"\$\$.*?\$\$", " ", markdown, flags=re.S)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    lines = [line for line in text.splitlines()
             if not line.lstrip().startswith(("|", "![", "<a id=")) and not line.startswith("#")]
    return "\n".join(lines)


def word_count(markdown: str) -> int:
    """Words of the body's prose (inline math counts as the words it is written with)."""
    return len(prose(body(markdown)).split())


def jargon(markdown: str) -> list[str]:
    """The jargon of :data:`JARGON` that the body uses (headings and tables included)."""
    text = re.sub(r"`[^`]*`", " ", body(markdown))  # code spans name code, not ideas
    return [w for w in JARGON if re.search(rf"\b{w}\b", text, re.I)]


def outside_references(markdown: str) -> list[str]:
    """References of the body to documents outside the report (links to code files are the answer's code)."""
    text = re.sub(r"\]\([^)]*\)", "]", body(markdown))  # a link's target is checked by report.checks
    return sorted(set(m.group(0) for m in OUTSIDE.finditer(text)))


def short_answers(markdown: str) -> dict[str, int]:
    """The number of sentences of the first paragraph under each question heading (the direct answer)."""
    out = {}
    parts = re.split(r"^### (.+)$", body(markdown), flags=re.M)
    for title, text in zip(parts[1::2], parts[2::2], strict=True):
        first = next((p for p in re.split(r"\n\s*\n", text) if p.strip()), "")
        out[title] = sentences(first)
    return out


def sentences(paragraph: str) -> int:
    """Sentences of a paragraph: ends of sentences outside inline math and abbreviations."""
    text = re.sub(r"\$[^$]*\$", "x", paragraph)
    text = re.sub(r"\b(e\.g|i\.e|i\.i\.d|et al|eq|Fig|vs)\.", "x", text)
    text = re.sub(r"\d\.\d", "x", text)
    return len(re.findall(r"[.!?](?=\s|$)", text.strip()))
