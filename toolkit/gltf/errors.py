"""The one error a model gives: `ModelError` (a ValueError whose message names the file and the problem)."""


class ModelError(ValueError):
    """A model that cannot be read or used; the message names the file and the problem."""
