"""Debian's Chromium driven by Playwright, to look at pages as a reader would.

Playwright's own browser downloads are never used (`playwright install` cannot reach its
servers here or in CI): `make test` installs the Debian package when it is missing, which CI
can do because it runs as root on a fresh Debian machine.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import BrowserContext, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Needed on these machines: no sandbox as root, no GPU, and no background traffic to Google.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def ensure_chromium() -> Path:
    """Return Debian's Chromium; `make test` installs the package when it is missing."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make test` as root, or `apt-get install chromium`")
    return CHROMIUM


@contextlib.contextmanager
def chromium(executable: Path, viewport: dict | None = None) -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile, closed (and its profile removed) on exit."""
    with tempfile.TemporaryDirectory(prefix="psafe-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(executable),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=viewport or {"width": 1200, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()
