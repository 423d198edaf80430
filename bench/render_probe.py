"""``python -m bench.render_probe CONFIG OUT.json``: time ``sitegen.web.render.render_site(config)``."""

from __future__ import annotations

import inspect
import json
import os
import sys
import time


def _html_state(root: str) -> dict[str, tuple[int, int]]:
    state = {}
    for directory, _dirs, names in os.walk(root):
        for name in names:
            if name.endswith(".html"):
                path = os.path.join(directory, name)
                st = os.stat(path)
                state[path] = (st.st_mtime_ns, st.st_size)
    return state


def main() -> int:
    config_path, out = sys.argv[1:3]
    from sitegen.config import load_config
    from sitegen.web.render import render_site

    config = load_config(config_path)
    before = _html_state(str(config.output))
    t0 = time.perf_counter()
    result = render_site(config)
    if inspect.iscoroutine(result):
        import trio

        async def wait():
            return await result

        result = trio.run(wait)
    render_s = time.perf_counter() - t0
    after = _html_state(str(config.output))
    changed = sum(1 for path, st in after.items() if before.get(path) != st)
    with open(out, "w") as handle:
        json.dump(
            {
                "render_s": render_s,
                "html_files": len(after),
                "html_changed": changed,
                "stats": str(result)[:300],
                "rendered": len(getattr(result, "rendered", []) or []),
            },
            handle,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
