"""axe-core (bundled by axe-playwright-python) run in a page: the violations that matter."""

from __future__ import annotations

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

_AXE = Axe()
SERIOUS = ("serious", "critical")


async def serious_violations(page: Page) -> list[str]:
    """'rule: where' for each serious or critical WCAG violation on the page as it is now."""
    results = await _AXE.run(page)
    found = []
    for violation in results.response["violations"]:
        if violation.get("impact") in SERIOUS:
            targets = ", ".join(str(node["target"]) for node in violation["nodes"][:3])
            found.append(f"{violation['id']}: {targets}")
    return found
