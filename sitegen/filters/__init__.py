"""Record filters: which records of an upstream a channel publishes, and why not."""
