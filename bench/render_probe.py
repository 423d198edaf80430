"""``python -m bench.render_probe CONFIG OUT.json``: time ``sitegen.web.render.render_site(config)``.

The process does nothing else, so its wall is what ``sitegen render`` costs: the pages on disk
are counted by the caller, outside it."""

from __future__ import annotations

import inspect
import json
import sys
import time


def main() -> int:
    config_path, out = sys.argv[1:3]
    from sitegen.config import load_config
    from sitegen.web.render import render_site

    config = load_config(config_path)
    t0 = time.perf_counter()
    result = render_site(config)
    if inspect.iscoroutine(result):
        import trio

        async def wait():
            return await result

        result = trio.run(wait)
    render_s = time.perf_counter() - t0
    with open(out, "w") as handle:
        json.dump(
            {
                "render_s": render_s,
                "stats": str(result)[:300],
                "rendered": len(getattr(result, "rendered", []) or []),
            },
            handle,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
