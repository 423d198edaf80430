"""The site's storage: the only writer of the published tree and of its private state."""
