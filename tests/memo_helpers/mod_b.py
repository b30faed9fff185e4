"""A second module with a function named ``square`` that computes something else."""


def square(x: int) -> int:
    """The square of ``x``, plus one (so sharing results with ``mod_a`` would show)."""
    return x * x + 1
