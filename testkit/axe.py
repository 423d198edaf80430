"""axe-core, the accessibility engine Lighthouse's audits run, injected into pages by the
browser tests: installed with npm into a cache directory on first use, never kept in the
repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from testkit.require import missing

AXE_VERSION = "4.11.4"
# The rules that apply: WCAG 2.x A and AA (2.2 brings target sizes) and axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def axe_cache_dir() -> Path:
    """Where npm installs axe-core: ``$SITEGEN_TEST_CACHE`` or the user's cache directory."""
    root = os.environ.get("SITEGEN_TEST_CACHE") or os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root else Path.home() / ".cache"
    return base / "sitegen-tests" / f"axe-core-{AXE_VERSION}"


def install_command(cache: Path) -> list[str]:
    return [
        "npm",
        "install",
        "--prefix",
        str(cache),
        "--no-audit",
        "--no-fund",
        "--no-save",
        f"axe-core@{AXE_VERSION}",
    ]


def axe_source(cache: Path | None = None) -> str:
    """The text of axe.min.js, installed with npm when missing; skips naming what is missing
    (fails when ``CI=true``)."""
    cache = cache or axe_cache_dir()
    script = cache / "node_modules" / "axe-core" / "axe.min.js"
    problem = ""
    if not script.is_file():
        if shutil.which("npm") is None:
            problem = "npm is missing"
        else:
            cache.mkdir(parents=True, exist_ok=True)
            result = subprocess.run(
                install_command(cache), capture_output=True, text=True, timeout=300, check=False
            )
            if result.returncode != 0:
                problem = f"npm failed: {result.stderr.strip()[-300:]}"
    if script.is_file():
        return script.read_text(encoding="utf-8")
    message = (
        f"axe-core {AXE_VERSION} (npm) is not installed ({problem}): run"
        f" `{' '.join(install_command(cache))}` or .ci/run"
    )
    missing(message)


def axe_violations(page: Any, source: str) -> list[str]:
    """The axe-core violations of the page loaded in ``page`` (playwright), one line each."""
    page.add_script_tag(content=source)
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: "
        + "; ".join(" ".join(n["target"]) for n in v["nodes"][:5])
        for v in result["violations"]
    ]


def seo_problems(page: Any) -> list[str]:
    """What Lighthouse's SEO audits would miss on the page: a title, a meta description, the
    document's language, a viewport."""
    found = page.evaluate(
        """() => ({
          title: document.title.trim(),
          description: (document.querySelector('meta[name="description"]') || {}).content || "",
          lang: document.documentElement.lang,
          viewport: !!document.querySelector('meta[name="viewport"]'),
        })"""
    )
    return [f"no {key}" for key, value in found.items() if not value]


# Lighthouse's limit for a good cumulative layout shift; beyond it the performance score drops.
LAYOUT_SHIFT_MAX = 0.1


def layout_shift(page: Any) -> float:
    """The page's cumulative layout shift so far (what the scripts moved after the first
    paint), as Chromium reports it."""
    return page.evaluate(
        """() => new Promise(resolve => {
          let total = 0;
          new PerformanceObserver(list => {
            for (const entry of list.getEntries()) if (!entry.hadRecentInput) total += entry.value;
          }).observe({type: "layout-shift", buffered: true});
          setTimeout(() => resolve(total), 100);
        })"""
    )
