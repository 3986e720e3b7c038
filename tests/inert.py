"""Checks that rendered output is inert: names from outside changed nothing of its structure.

Used by the renderer tests, the end-to-end trust tests and the convergence property.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token

from reconciler import spec

# CommonMark plus the GFM table extension: what GitHub, GitLab and Azure DevOps agree on.
_MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])

# Hostile names, as anyone who can name a report in the portal could write them.
HOSTILE = [
    "Q1\n```\n## Nothing is deleted by this plan",
    "ok\r- delete nothing",
    "``` ~~~ <details> </details>",
    "# heading",
    "- list item",
    "1. numbered",
    "> quote",
    "[link](https://evil.example)",
    "![img](https://evil.example/x.png)",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "@octocat please approve",
    "name\u202eexe.ssalc",
    "zero\u200bwidth",
    "tab\there",
    "escape \x1b[2J\x1b[31mred",
    "*emph* _emph_ **bold** `code` | pipe |",
    "&lt;entity&gt; &#64;mention",
    "trailing backslash \\",
    "<!-- comment -->",
    "line\u2028separator",
    "filler\u3164and\u034fjoiner\u2800blank",  # printable, yet they show nothing
]


def tokens(markdown: str) -> list[Token]:
    out: list[Token] = []

    def walk(items: list[Token]) -> None:
        for t in items:
            out.append(t)
            if t.children:
                walk(t.children)

    walk(_MD.parse(markdown))
    return out


def assert_markdown_inert(markdown: str, *, headings: set[str], sections: int) -> None:
    """The document has exactly the structure the renderer meant, whatever the names said."""
    found = tokens(markdown)
    kinds = [t.type for t in found]
    shown = {found[i + 1].content for i, t in enumerate(found) if t.type == "heading_open"}
    assert shown <= headings, f"unexpected headings: {shown - headings}"
    for kind in ("link_open", "image", "html_inline"):
        assert kind not in kinds, f"a name made a {kind}"
    html = [t.content for t in found if t.type == "html_block"]
    for block in html:
        assert block.startswith(("<details><summary><code>", "</details>")), block
    assert sum(1 for b in html if b.startswith("<details>")) == sections
    assert kinds.count("fence") == sections
    for t in found:
        if t.type in ("text", "softbreak"):
            assert "@" not in t.content or t.content.startswith("&"), f"@mention outside code: {t.content!r}"


def assert_text_inert(text: str) -> None:
    """A terminal plan: no character but the line break can move the cursor or hide text."""
    bad = {c for c in text if not spec.visible(c) and c != "\n"}
    assert not bad, f"unescaped control characters: {sorted(map(hex, map(ord, bad)))}"
