"""Country-specific personal identifiers: formats, check digits, normalisation (pure)."""
