"""Layout checks for the browser tests: horizontal overflow and squeezed text columns, measured
in the page and inside the bell's and the inbox's shadow roots."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

# Issue 10's "one letter per line": a text column squeezed by its neighbours. A column is an
# item's text (`.text` in the bell and the inbox), or any element whose own text (MIN_CHARS or
# more) wraps onto three lines or more; either must be at least MIN_COLUMN_PX wide. A table's
# column heading is not a text column (the preferences table's checkbox columns are narrow).
MIN_COLUMN_PX = 120
MIN_CHARS = 12

_MEASURE = """([minPx, minChars]) => {
  const roots = [document];
  const hosts = document.querySelectorAll('tidings-bell, tidings-inbox');
  for (const host of hosts) roots.push(host.shadowRoot);
  const narrow = [];
  for (const root of roots) {
    for (const node of root.querySelectorAll('*')) {
      const own = [...node.childNodes].filter((c) => c.nodeType === 3)
        .map((c) => c.textContent).join('').trim();
      const column = root !== document && node.classList.contains('text');
      if (!column && (own.length < minChars || node.closest('thead'))) continue;
      const box = node.getBoundingClientRect();
      const style = getComputedStyle(node);
      if (!box.width || style.visibility === 'hidden' || node.closest('.sr-only')) continue;
      const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.4;
      if (!column && box.height < 2.5 * line) continue; // one or two lines: a label, not a column
      const name = `${node.tagName.toLowerCase()}.${node.className}`;
      const px = Math.round(box.width);
      if (px < minPx) narrow.push(`${name}: ${px}px "${own.slice(0, 30)}"`);
    }
  }
  const doc = document.scrollingElement;
  return { width: window.innerWidth, scrollWidth: doc.scrollWidth, narrow };
}"""


def measure(page: Page) -> dict[str, Any]:
    """``{width, scrollWidth, narrow}``: the viewport, the page's scroll width, and every text
    element narrower than MIN_COLUMN_PX."""
    result: dict[str, Any] = page.evaluate(_MEASURE, [MIN_COLUMN_PX, MIN_CHARS])
    return result


def assert_fits(page: Page, what: str) -> None:
    m = measure(page)
    assert m["scrollWidth"] <= m["width"], f"{what}: {m['scrollWidth']} px wide at {m['width']} px"
    assert not m["narrow"], f"{what}: text columns under {MIN_COLUMN_PX} px: {m['narrow']}"
