"""One module per CLI command: each parses options and calls one library function."""
