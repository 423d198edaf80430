"""Approval-gated channels: what is approved, what waits, the approvals file and the commands."""
