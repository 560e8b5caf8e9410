"""JSON-RPC errors with the codes and wording of go-ethereum, so clients' error handling carries over."""
from __future__ import annotations

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # geth's catch-all for failed calls (unknown header, tx rejected, ...)
LIMIT_EXCEEDED = -32005
EXECUTION_REVERTED = 3


class RpcError(Exception):
    """An error answered to the client as `{"code", "message"[, "data"]}`."""

    code = SERVER_ERROR

    def __init__(self, message: str, *, code: int | None = None, data: object = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.data = data

    def to_json(self) -> dict:
        err = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


class InvalidParams(RpcError):
    code = INVALID_PARAMS


class InvalidRequest(RpcError):
    code = INVALID_REQUEST


class MethodNotFound(RpcError):
    code = METHOD_NOT_FOUND


class LimitExceeded(RpcError):
    code = LIMIT_EXCEEDED


class ExecutionReverted(RpcError):
    """A reverted call: code 3, the revert data as `data`, and the decoded reason in the message."""

    code = EXECUTION_REVERTED

    def __init__(self, reason: str | None, revert_data: bytes) -> None:
        message = f"execution reverted: {reason}" if reason else "execution reverted"
        super().__init__(message, data="0x" + revert_data.hex())
