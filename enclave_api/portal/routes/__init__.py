"""Portal pages, one module per audience (plus login and the front page)."""
