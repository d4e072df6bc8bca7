"""Encrypted dataset storage: key providers (KEKs) and the envelope-encrypted blob store."""
