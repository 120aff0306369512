"""Who may see whom: principals and their scopes, tokens, the one policy, consents, and the
audit trail every request leaves."""
