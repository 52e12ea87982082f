"""Generated protobuf modules for the BuildKit wire formats (see scripts/gen-protos)."""
