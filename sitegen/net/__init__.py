"""The upstream client: connection pool, retries, redirects, credentials, package downloads."""
