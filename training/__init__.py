"""Training the reader and its confidence calibrator (run by developers, never by the product)."""
