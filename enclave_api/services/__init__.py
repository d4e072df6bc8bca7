"""Business logic. Services take a session and an acting user, enforce the rules, write the audit
event in the same transaction, and raise :mod:`enclave_api.errors` exceptions — never HTTP ones."""
