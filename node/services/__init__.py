"""Validator services: the node's validators serve, verify and attribute paid inference jobs by
themselves (docs/services.md).

`model` and `attribution` hold the work shared with `openledger job submit|attest` and `proof
post|finalise`; `jobs` watches the chain and drives each job (serve, attest, post and finalise its
proof) with its progress kept durable in `state`.
"""
