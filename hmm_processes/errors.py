"""The one error type raised for bad process input (shape, values, names, parameters)."""


class ProcessError(ValueError):
    """A process definition, parameter or name is invalid; the message says what and how to fix it."""
