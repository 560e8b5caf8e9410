"""Proof of Attribution: which contributions shaped a model output, as re-checkable proofs."""
