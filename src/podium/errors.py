"""One error type for everything a user can get wrong, worded as expected / received / fix."""


class PodiumError(Exception):
    """Bad input or state the user can fix. The CLI prints it without a traceback and exits 2."""

    def __init__(self, what: str, *, expected: str = "", received: str = "", fix: str = ""):
        self.what, self.expected, self.received, self.fix = what, expected, received, fix
        parts = [what]
        if expected:
            parts.append(f"Expected: {expected}.")
        if received:
            parts.append(f"Received: {received}.")
        if fix:
            parts.append(f"Fix: {fix}.")
        super().__init__(" ".join(parts))
