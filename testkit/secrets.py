"""The token the secrets tests look for in every output: its value, the environment variable
a channel's URL takes it from, and the subdir the channel's runs mirror."""

from __future__ import annotations

import random

# Seeded: the same token every run, yet nothing any file or message would hold by chance.
TOKEN = "tk-" + random.Random(20240601).randbytes(16).hex()
ENV = "SITEGEN_TEST_TOKEN"
LINUX = "linux-64"
