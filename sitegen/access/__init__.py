"""Private channels: tokens, their store, and the files the web server checks them against."""
