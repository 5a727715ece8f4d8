"""Pure pandas/pyarrow: panel schema, readers, synthetic data, validation suites, prompt windows."""
