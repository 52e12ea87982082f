"""The user-facing builtins, written in Starlark (``*.star``), shipped as package data."""
