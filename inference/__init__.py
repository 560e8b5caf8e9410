"""OpenLoRA: many LoRA adapters on one base model, with verifiable activation commitments.

AdapterStore (content-addressed adapters, disk -> CPU -> device tiers), Engine (continuous
batching with gathered multi-adapter LoRA), ActivationCommitment (TOPLOC-style proof), Verifier
(one prefill re-check), run_job / verify_job (what the node calls), serve (OpenAI-style HTTP).
"""
from inference.adapters import AdapterStore, BaseSpec, adapter_dir_hash, adapter_hash
from inference.commitment import ActivationCommitment
from inference.engine import Engine, Generation, SamplingParams
from inference.errors import (AdapterHashMismatch, BadRequest, CorruptAdapter, IncompatibleAdapter,
                              InferenceError, UnknownAdapter)
from inference.jobs import run_job, verify_job
from inference.serve import make_server
from inference.verify import Claim, Verdict, Verifier

__all__ = [
    "ActivationCommitment", "AdapterHashMismatch", "Claim", "AdapterStore", "BadRequest", "BaseSpec", "CorruptAdapter",
    "Engine", "Generation", "IncompatibleAdapter", "InferenceError", "SamplingParams", "UnknownAdapter",
    "Verdict", "Verifier", "adapter_dir_hash", "adapter_hash", "make_server", "run_job", "verify_job",
]
