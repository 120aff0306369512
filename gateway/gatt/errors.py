class GattParseError(ValueError):
    """A characteristic value that is truncated, oversized or inconsistent with its flags."""

    def __init__(self, characteristic: str, problem: str, data: bytes) -> None:
        super().__init__(f"{characteristic}: {problem} (payload {data.hex() or 'empty'})")
        self.characteristic = characteristic
        self.problem = problem
        self.data = bytes(data)
