"""Write an SVG screenshot of the review app for the README (``docs/review-app.svg``).

Run it on a galdb home where the demo has run (it reviews the demo's ``morphology`` task as
the reviewer ``screenshot``, then quits, releasing its leases; it decides nothing)::

    GALDB_HOME=/tmp/galdb-demo python scripts/review_screenshot.py docs/review-app.svg
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from galdb.db.settings import Settings
from galdb.review.app.app import ReviewApp
from galdb.review.app.run import open_session


def main(out: Path, task: str = "morphology") -> None:
    session = open_session(Settings.from_env(), task, "screenshot")
    app = ReviewApp(session, show=["mag_r", "half_light_radius_arcsec"])

    async def shoot() -> None:
        async with app.run_test(size=(130, 44)) as pilot:
            await pilot.pause(1.0)
            app.save_screenshot(filename=out.name, path=str(out.parent))
            await pilot.press("q")

    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(shoot())
    finally:
        session.close()
        session.conn.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/review-app.svg"))
