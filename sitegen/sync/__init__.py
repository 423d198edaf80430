"""The mirror pipeline: fetch, select, closure, merge, plan, download, publish, prune, history."""
