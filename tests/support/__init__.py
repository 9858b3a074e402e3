"""Helpers the test modules share (not part of the flowdeck package)."""
