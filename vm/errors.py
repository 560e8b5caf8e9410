"""Named state-machine errors. Each is a py-evm ValidationError, so py-evm's own block-import
paths treat them as an invalid block or transaction."""
from eth_utils import ValidationError


class WrongChainId(ValidationError):
    """A transaction signed for another chain (or with no chain id at all: not replay-protected)."""

    def __init__(self, got: int | None, expected: int) -> None:
        self.got, self.expected = got, expected
        super().__init__(f"invalid chain id: transaction has {got}, chain is {expected}")
