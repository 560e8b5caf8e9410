"""Named errors of the attribution engine: each says which input was wrong and why."""


class AttributionError(Exception):
    """Base class: bad input to the attribution engine (nothing was changed)."""


class EmptyOutput(AttributionError):
    """The output to attribute is empty: there is nothing to attribute."""


class UnknownRun(AttributionError):
    """No attribution index exists for the named training run."""


class IndexRootMismatch(AttributionError):
    """An attribution index does not hash to the root its training run committed."""


class NoAttribution(AttributionError):
    """No contribution supports the output (all scores are zero or negative)."""


class MalformedProof(AttributionError):
    """Proof bytes do not decode to a well-formed AttributionProof."""
