"""Conda formats: the repodata schema, versions and MatchSpecs, current_repodata, channeldata."""
