"""The pull-through fetcher for passive mirrors."""
