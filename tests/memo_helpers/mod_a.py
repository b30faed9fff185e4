"""A module with a function named ``square`` (``mod_b`` has another one)."""


def square(x: int) -> int:
    """The square of ``x``."""
    return x * x
