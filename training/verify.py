"""verify_run: check a TrainingRun record by replaying k randomly chosen checkpoint segments.

Proof-of-learning style: the record commits to a hash for each checkpoint; the verifier checks the
checkpoints it uses (step 0, the chosen segments' ends, the last) against those hashes, recomputes
the seeded initial state, then replays k segments (chosen by a seed from the chain) from their
starting checkpoint and compares the result with the committed end checkpoint. On the machine and
thread count that trained, the replay is bit identical (`tolerance=0` demands that). Elsewhere
floating-point reduction order differs, so the deviation is measured relative to the segment's own
update:
    deviation = ||replayed - claimed|| / ||claimed - start||   (over the adapter weights)
An honest replay with 1 vs 2 torch threads deviated by 5.3e-6 (MiniLM, bench/bench_training.py);
a segment trained on other data deviated by 1.06, with one of 24 rows changed by 0.021, and a
skipped one without bound; a run with another seed fails the step-0 check before any replay.
"""
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from eth_utils import keccak
from peft import get_peft_model_state_dict
from safetensors.torch import load_file

from training.config import ConfigError, TrainingConfig
from training.data import DataError, Dataset
from training.models import load_base
from training.record import TrainingRun, adapter_hash, tensor_hash
from training.trainer import Session, checkpoint_path, checkpoint_steps, deterministic, load_checkpoint

DEFAULT_TOLERANCE = 1e-3  # calibrated: honest cross-thread replay 5.3e-6, dishonest segments > 1e-2


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str
    segments: tuple[int, ...] = ()
    max_deviation: float = 0.0

    def __bool__(self) -> bool:
        return self.accepted


def choose_segments(record: TrainingRun, k: int, challenge: bytes | None = None) -> tuple[int, ...]:
    """k distinct segment indices, seeded by keccak(challenge || record hash); the challenge should be a
    block hash from after the record was committed, so the prover could not know it in advance."""
    count = len(record.checkpoint_steps) - 1
    seed = keccak((challenge or b"") + record.record_hash())
    return tuple(sorted(random.Random(seed).sample(range(count), min(k, count))))


def verify_run(record: TrainingRun, data: Dataset, checkpoints: str | Path, k: int = 3, *,
               config: TrainingConfig, adapter_dir: str | Path | None = None, challenge: bytes | None = None,
               tolerance: float = DEFAULT_TOLERANCE, device: str = "cpu",
               segments: tuple[int, ...] | None = None) -> Verdict:
    """Accept `record` when its inputs, checkpoints, initial state and k replayed segments all check out.

    `checkpoints` is the run's output directory (holding checkpoints/); `tolerance=0` demands a bit
    identical replay. `segments` names the segments to replay instead of drawing k of them (a paid
    training job's chain picks them: `TrainingJobs.challengeSegments`).
    """
    out_dir = Path(checkpoints)
    if k < 1:
        raise ValueError(f"k: must be at least 1, got {k}")
    if not 0 <= tolerance < float("inf"):
        raise ValueError(f"tolerance: must be a finite number >= 0, got {tolerance}")
    if config.config_hash() != record.config_hash or config.seed != record.seed:
        return Verdict(False, "config (or its seed) does not match the record's config hash")
    if data.root != record.datanet_root or len(data) != record.row_count:
        return Verdict(False, f"data root 0x{data.root.hex()} does not match the record's 0x{record.datanet_root.hex()}")
    try:
        examples = data.examples(config)
    except (DataError, ConfigError) as exc:
        return Verdict(False, f"data cannot be used with this config: {exc}")
    steps = checkpoint_steps(config, len(examples))
    if steps != record.checkpoint_steps or steps[-1] != record.step_count:
        return Verdict(False, f"record claims checkpoint steps {record.checkpoint_steps}, the config and data give {steps}")
    if adapter_dir is not None and adapter_hash(adapter_dir) != record.adapter_hash:
        return Verdict(False, "adapter files do not match the record's adapter hash")

    if segments is not None and not all(0 <= i < len(steps) - 1 for i in segments):
        return Verdict(False, f"segments {list(segments)} out of range: the run has {len(steps) - 1}")
    chosen = tuple(sorted(set(segments))) if segments is not None else choose_segments(record, k, challenge)
    needed = {0, steps[-1]} | {steps[i] for i in chosen} | {steps[i + 1] for i in chosen}
    states = {}
    for step, expected in zip(steps, record.checkpoint_hashes):
        if step not in needed:  # only the checkpoints this verification uses are read and hashed
            continue
        path = checkpoint_path(out_dir, step)
        if not path.is_file():
            return Verdict(False, f"checkpoint for step {step} is missing ({path})")
        try:
            states[step] = load_checkpoint(path, config, data.root)
        except (ConfigError, OSError, ValueError) as exc:
            return Verdict(False, f"checkpoint for step {step} is unusable: {exc}")
        if tensor_hash(states[step]) != expected:
            return Verdict(False, f"checkpoint for step {step} does not match the record's hash")

    base = load_base(record.base_model, config.task, len(config.labels), device)
    with deterministic(device):
        session = Session(config, base, examples, device)
        if session.base_hash != record.base_model_hash:
            return Verdict(False, "base model weights do not match the record's base model hash")
        for step, state in states.items():
            try:
                session.check_fits(state)
            except ConfigError as exc:
                return Verdict(False, f"checkpoint for step {step} is unusable: {exc}")
            if int(state["step"][0]) != step:
                return Verdict(False, f"checkpoint for step {step} holds step {int(state['step'][0])}")
        initial = _adapter(session.state())
        if not _close(initial, _adapter(states[0]), tolerance):
            return Verdict(False, "step-0 checkpoint is not the LoRA init the record's seed gives")
        if adapter_dir is not None and not _adapter_matches(session, states[steps[-1]], Path(adapter_dir)):
            return Verdict(False, "adapter weights differ from the final checkpoint")
        worst = 0.0
        for segment in chosen:
            start, end = steps[segment], steps[segment + 1]
            session.restore(states[start])
            while session.step < end:
                session.train_step()
            replayed, claimed, origin = _adapter(session.state()), _adapter(states[end]), _adapter(states[start])
            deviation = _deviation(replayed, claimed, origin)
            worst = max(worst, deviation)
            if (tolerance == 0 and not _close(replayed, claimed, 0)) or deviation > tolerance:
                return Verdict(False, f"segment {segment} (steps {start}->{end}) does not replay: "
                                      f"deviation {deviation:.3g} > tolerance {tolerance:g}", chosen, worst)
    return Verdict(True, f"{len(chosen)} of {len(steps) - 1} segments replayed", chosen, worst)


def _adapter(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.double() for k, v in state.items() if k.startswith("adapter.")}


def _deviation(replayed: dict[str, torch.Tensor], claimed: dict[str, torch.Tensor],
               origin: dict[str, torch.Tensor]) -> float:
    if replayed.keys() != claimed.keys() or claimed.keys() != origin.keys():
        return float("inf")
    diff = sum(float((replayed[k] - claimed[k]).pow(2).sum()) for k in claimed) ** 0.5
    update = sum(float((claimed[k] - origin[k]).pow(2).sum()) for k in claimed) ** 0.5
    return diff / max(update, 1e-30)


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], tolerance: float) -> bool:
    """Equal (tolerance 0), else within `tolerance` relative to the tensors' own norm."""
    if a.keys() != b.keys():
        return False
    if tolerance == 0:
        return all(torch.equal(a[k], b[k]) for k in a)
    diff = sum(float((a[k] - b[k]).pow(2).sum()) for k in a) ** 0.5
    norm = sum(float(b[k].pow(2).sum()) for k in b) ** 0.5
    return diff <= tolerance * max(norm, 1e-30)


def _adapter_matches(session: Session, final: dict[str, torch.Tensor], adapter_dir: Path) -> bool:
    """The saved peft adapter holds exactly the final checkpoint's weights."""
    session.restore(final)
    saved = load_file(str(adapter_dir / "adapter_model.safetensors"))
    expected = get_peft_model_state_dict(session.model)
    return saved.keys() == expected.keys() and all(torch.equal(saved[k], expected[k].cpu()) for k in saved)
