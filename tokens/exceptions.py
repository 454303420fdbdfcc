"""The one exception type of the ``tokens`` package."""


class TokenError(ValueError):
    """Bad input to a builder, or a malformed token given to the parser.

    The message always says what is wrong in words a person can act on.
    """
