"""A tiny package copied into the image by the project-copy example."""


def greet(name: str) -> str:
    """Return a greeting for ``name``."""
    return f"hello, {name}"
