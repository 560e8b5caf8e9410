"""Validator services: the node's validators serve and verify paid inference jobs by themselves.

`model` holds the model work shared with `openledger job submit|attest`; `jobs` watches the chain
and drives each job (serve, then attest) with its progress kept durable in `state`.
"""
