"""The one error every decoder of the wire contract raises."""


class WireError(ValueError):
    """A payload that is not a valid message of its topic; ``field`` names where it is wrong
    (``payload`` for bytes that are not a JSON document at all)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
