"""enclave_api package."""
