"""Named errors of the inference package: each says which value was bad, so the node can map it
to a JSON-RPC error and the HTTP server to a 4xx answer without parsing messages."""


class InferenceError(Exception):
    """Base class; `http_status` is what the serving API answers with."""

    http_status = 400


class UnknownAdapter(InferenceError):
    """No adapter with this content hash is in the store."""

    http_status = 404


class CorruptAdapter(InferenceError):
    """An adapter's files are missing, unreadable or not a valid peft LoRA adapter."""

    http_status = 422


class AdapterHashMismatch(CorruptAdapter):
    """The files on disk do not hash to the id they are stored (or registered) under."""


class IncompatibleAdapter(InferenceError):
    """A valid adapter that cannot run on this base model or executor (targets, shapes, rank)."""

    http_status = 422


class BadRequest(InferenceError):
    """A request parameter is out of range (prompt length, sampling parameters, token ids)."""
