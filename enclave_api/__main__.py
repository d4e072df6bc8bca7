"""``python -m enclave_api`` runs the CLI."""

from enclave_api.cli import main

main()
