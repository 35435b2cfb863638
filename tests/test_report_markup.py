"""report.markup: Markdown through a CommonMark parser with dollar math, the formulas as latex2mathml's MathML."""

import re
from pathlib import Path

from report.markup import markdown_to_html, tex_to_mathml

ROOT = Path(__file__).resolve().parents[1]


def test_inline_and_display_math_are_latex2mathml():
    out = markdown_to_html("Energy $E = mc^2$ here.\n\n$$\\int_0^1 x\\,dx$$\n")
    assert tex_to_mathml("E = mc^2", display=False) in out
    assert tex_to_mathml("\\int_0^1 x\\,dx", display=True) in out
    assert "$" not in out


def test_code_span_keeps_its_dollars():
    out = markdown_to_html("Run `echo $HOME and $PATH` now.")
    assert "<code>echo $HOME and $PATH</code>" in out and "<math" not in out


def test_fenced_block_keeps_its_dollars():
    out = markdown_to_html("```bash\necho $5 and $6\nprice=$x$\n```\n")
    assert "<pre><code class=\"language-bash\">echo $5 and $6\nprice=$x$\n</code></pre>" in out
    assert "<math" not in out


def test_escaped_dollar_is_a_dollar():
    out = markdown_to_html(r"It costs \$5, and \$6 with tax.")
    assert "It costs $5, and $6 with tax." in out and "\\" not in out and "<math" not in out


def test_dollar_before_a_digit_is_not_math():
    out = markdown_to_html("Between $5 and $6 a day.")
    assert "Between $5 and $6 a day." in out and "<math" not in out


def test_tables_and_links():
    out = markdown_to_html("| a | $b$ |\n|---|---|\n| 1 | [x](tests/t.py) |\n", link_base="../")
    assert "<table>" in out and tex_to_mathml("b", display=False) in out and 'href="../tests/t.py"' in out


def test_theory_formulas_render_as_before():
    """Every formula of docs/theory.md, found in its prose (code cut out) by the plain-regex reading the report
    used before the parser, comes out as latex2mathml's MathML of that formula, in the same order."""
    text = (ROOT / "docs" / "theory.md").read_text()
    prose = re.sub(r"```.*?```|`[^`\n]*`", "", text, flags=re.S)
    expected = []
    for m in re.finditer(r"\$\$(.+?)\$\$|(?<![\\$])\$(?!\$)([^$\n]+?)\$(?!\$)", prose, re.S):
        expected.append(tex_to_mathml(m.group(1), True) if m.group(1) is not None else tex_to_mathml(m.group(2), False))
    out = markdown_to_html(text)
    assert len(expected) > 100
    got = re.findall(r"<math.*?</math>", out, re.S)
    assert got == [e for e in expected if e.startswith("<math")]
