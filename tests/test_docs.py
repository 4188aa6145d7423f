"""The documentation runs: every ``python`` block of every page, and the docs hook.

Each page's ``python`` fenced blocks run in order in one fresh namespace (a block
sees what the blocks before it defined), inside a temporary working directory, so a
page is one program. A block preceded by ``<!-- skip-test: <reason> -->`` (for
example one that needs a PostgreSQL server) is not run. Tracebacks point at the
Markdown file and line.

The hook that generates diagrams and field tables (``docs/hooks.py``) is called
directly, so no built site is needed.
"""

from __future__ import annotations

import importlib.util
import re
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
SKIP = re.compile(r"<!--\s*skip-test:\s*(?P<reason>[^>]*?)\s*-->\s*\Z")


@attrs.frozen
class Block:
    """One ``python`` fenced block of a page."""

    page: Path
    line: int  # 1-based line of the block's first code line in the Markdown file
    code: str
    skip_reason: str | None


def python_blocks(page: Path) -> list[Block]:
    """The ``python`` fenced blocks of ``page`` in order, with their skip markers."""
    text = page.read_text(encoding="utf-8")
    blocks: list[Block] = []
    for match in FENCE.finditer(text):
        if match["lang"] != "python":
            continue
        skip = SKIP.search(text, 0, match.start())
        line = text.count("\n", 0, match.start("body")) + 1
        blocks.append(
            Block(
                page=page,
                line=line,
                code=textwrap.dedent(match["body"]),
                skip_reason=skip["reason"] if skip else None,
            )
        )
    return blocks


README = DOCS.parent / "README.md"
PAGES = [*sorted(p for p in DOCS.glob("*.md") if python_blocks(p)), README]


def load_hooks() -> ModuleType:
    """Import ``docs/hooks.py`` the way mkdocs does: from its file."""
    spec = importlib.util.spec_from_file_location("salesflow_docs_hooks", DOCS / "hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    return load_hooks()


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # SQLite examples write relative files here
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    for block in python_blocks(page):
        if block.skip_reason is not None:
            continue
        # Pad with newlines so a traceback names the Markdown file and its line.
        source = "\n" * (block.line - 1) + block.code
        exec(compile(source, str(page), "exec"), namespace)


def test_the_quick_start_and_storage_pages_have_examples() -> None:
    names = {p.name for p in PAGES}
    assert {"quickstart.md", "leads.md", "storage.md", "views.md"} <= names


def test_skip_markers_give_a_reason_and_precede_a_block() -> None:
    for page in DOCS.glob("*.md"):
        text = page.read_text(encoding="utf-8")
        markers = len(re.findall(r"<!--\s*skip-test:", text))
        skipped = [b for b in python_blocks(page) if b.skip_reason is not None]
        assert markers == len(skipped), f"{page.name}: a skip-test marker is not before a block"
        assert all(b.skip_reason for b in skipped), f"{page.name}: skip-test needs a reason"


def test_block_extraction_reads_order_lines_and_skip_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# T\n\n```python\nx = 1\n```\n\n<!-- skip-test: needs PostgreSQL -->\n"
        "```python\nraise SystemExit\n```\n\n```bash\nls\n```\n\n"
        "!!! note\n    ```python\n    y = x + 1\n    ```\n",
        encoding="utf-8",
    )
    blocks = python_blocks(page)
    assert [b.code for b in blocks] == ["x = 1\n", "raise SystemExit\n", "y = x + 1\n"]
    assert [b.line for b in blocks] == [4, 9, 18]
    assert [b.skip_reason for b in blocks] == [None, "needs PostgreSQL", None]


def test_lead_lifecycle_diagram_is_generated_from_the_class(hooks: ModuleType) -> None:
    page = "Before\n\n<!-- lifecycle: salesflow.lead.LeadLifecycle -->\n\nAfter\n"
    rendered = hooks.on_page_markdown(page, page=None, config=None, files=None)
    assert "```mermaid\nstateDiagram-v2\n" in rendered
    assert "open --> qualified" in rendered
    assert "open --> disqualified" in rendered
    assert "qualified --> open" in rendered
    assert "<!--" not in rendered
    assert rendered.startswith("Before\n")
    assert rendered.endswith("After\n")


def test_other_lifecycles_render(hooks: ModuleType) -> None:
    opportunity = hooks.render("<!-- lifecycle: salesflow.opportunity.OpportunityLifecycle -->")
    assert "open --> won" in opportunity
    assert "lost --> open" in opportunity
    activity = hooks.render("<!-- lifecycle: salesflow.activity.ActivityLifecycle -->")
    assert "open --> completed" in activity
    assert "open --> canceled" in activity


def test_field_tables_list_every_field(hooks: ModuleType) -> None:
    from salesflow import Activity, Lead

    table = hooks.render("<!-- fields: salesflow.Lead -->")
    for field in attrs.fields(Lead):
        assert f"| `{field.name}` |" in table
    assert "| `topic` | `str` | required | host |" in table
    assert "| `status` | `LeadStatus` | `'open'` | salesflow |" in table
    assert "| `estimated_value` | `Money | None` | `None` | host |" in table
    activity = hooks.render("<!-- fields: salesflow.Activity -->")
    assert "| `subject` | `str` | required | host |" in activity
    assert "| `closed_at` | `datetime | None` | `None` | salesflow |" in activity
    assert len(activity.splitlines()) == len(attrs.fields(Activity)) + 2


def test_standard_process_flow_diagrams_are_generated_from_the_definitions(
    hooks: ModuleType,
) -> None:
    from salesflow.process_render import mermaid
    from salesflow.process_standard import LEAD_TO_OPPORTUNITY, MARKETING_LEAD_PROCESS

    page = "Before\n\n<!-- process-flow: LEAD_TO_OPPORTUNITY -->\n\nAfter\n"
    rendered = hooks.on_page_markdown(page, page=None, config=None, files=None)
    assert f"```mermaid\n{mermaid(LEAD_TO_OPPORTUNITY)}```" in rendered
    assert '    p0 ==>|"hand-over"| p1\n' in rendered
    assert "<!--" not in rendered
    assert rendered.startswith("Before\n")
    assert rendered.endswith("After\n")
    marketing = hooks.render("<!--process-flow:MARKETING_LEAD_PROCESS-->")
    assert marketing == f"```mermaid\n{mermaid(MARKETING_LEAD_PROCESS)}```"
    assert '    p1 -.->|"jump"| p4\n' in marketing
    with pytest.raises(ValueError, match="known: LEAD_TO_OPPORTUNITY, MARKETING_LEAD_PROCESS"):
        hooks.render("<!-- process-flow: NO_SUCH_FLOW -->")
    with pytest.raises(ValueError, match="not a process flow"):
        hooks.render("<!-- process-flow: QUALIFY -->")  # a stage id constant, not a flow


def test_unknown_marker_targets_fail_the_build(hooks: ModuleType) -> None:
    with pytest.raises(ValueError, match="cannot be imported"):
        hooks.render("<!-- lifecycle: salesflow.lead.NoSuchLifecycle -->")
    with pytest.raises(ValueError, match="not an attrs class"):
        hooks.render("<!-- fields: salesflow.lead.LeadLifecycle -->")


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_every_marker_in_the_docs_expands(hooks: ModuleType, page: Path) -> None:
    rendered = hooks.on_page_markdown(page.read_text(encoding="utf-8"))
    assert not hooks.MARKER.search(rendered)


def test_pages_generate_the_three_lifecycles(hooks: ModuleType) -> None:
    leads = hooks.render((DOCS / "leads.md").read_text(encoding="utf-8"))
    assert "open --> qualified" in leads
    records = hooks.render((DOCS / "records.md").read_text(encoding="utf-8"))
    assert "open --> won" in records
    assert "open --> completed" in records


def test_every_page_is_in_the_nav() -> None:
    config = (DOCS.parent / "mkdocs.yml").read_text(encoding="utf-8")
    for page in DOCS.glob("*.md"):
        assert f": {page.name}" in config, f"{page.name} is missing from the mkdocs.yml nav"
