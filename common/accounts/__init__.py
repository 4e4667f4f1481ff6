"""Accounts: users, tokens, quotas, token reservations and reader profiles."""
