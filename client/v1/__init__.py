"""Generated from proto/flowdeck/v1 by scripts/gen-proto. Do not edit."""
