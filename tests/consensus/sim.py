"""A deterministic simulated network of consensus state machines, driven by one seed.

    python -m tests.consensus.sim --seed 17            replay one run (prints its trace on failure)
    python -m tests.consensus.sim --start 0 --runs 500 sweep seeds

Each seed draws a scenario (`Scenario.from_seed`): 4 to 7 validators with equal or uneven stake,
message delay (and so reordering), loss, duplication, links cut for all of a round's prevotes or
precommits, partitions that heal, crash-restarts (some part-way through carrying out a list of
actions), and at most one byzantine validator with under 1/3 of the stake (equivocating
proposals and votes, withholding, blocks that do not match their hash, invalid blocks, votes for
rounds ahead, forgetting its lock and valid value). Loss, cuts and partitions stop at `heal_at`.

The node around each state machine is modelled as item 2 and the p2p slice of issue 13 will
build it: actions are carried out in order (the signer state is "persisted" before a message
is sent), the application answers after a delay, a decided block is finalised and the next
height starts after a short commit delay. Gossip is modelled as CometBFT's reactors do it: a
peer's round state is known (here: read directly), and every `gossip_ms` each validator sends
each peer of its height the messages it has and the peer lacks, and a peer at a lower height the
proposal and precommits that decided that height. A crash loses everything but the finalised
chain and the last persisted signer state; the restarted machine starts from those.

Invariants, checked as the run goes: no two honest validators decide different blocks at a
height; a decided block was proposed for that height and is valid; every decision's commit
verifies; no honest validator signs two different messages for one (height, round, step); no
honest validator's message is rejected; every evidence found verifies and names the byzantine
validator. And liveness: once the network has healed and every crashed validator has restarted,
every honest validator decides every height up to the target, and at least two heights beyond
the highest any had decided at that moment.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import heapq
import random
import sys

from consensus import (
    BlockProposed, BlockValidated, BroadcastProposal, BroadcastVote, ConsensusError, Decide, EvidenceFound,
    PersistSignerState, Proposal, ProposalReceived, Rejected, RequestBlock, ScheduleTimeout, SignedProposal,
    SignedVote, Signer, SignerState, StateMachine, TimeoutConfig, TimeoutElapsed, ValidateBlock, ValidatorSet, Vote,
    VoteReceived, verify_commit, verify_evidence,
)
from consensus.messages import SigningKey
from tests.consensus.app import CHAIN_ID, TrivialApp, address, block_hash, make_block, private_key, validator_set

BYZANTINE_MODES = ("equivocate", "withhold", "tamper", "future", "invalid", "amnesia")
TIMEOUTS = TimeoutConfig(propose=300, propose_delta=100, prevote=150, prevote_delta=50, precommit=150,
                         precommit_delta=50)


class InvariantViolation(AssertionError):
    pass


@dataclasses.dataclass
class Scenario:
    seed: int
    powers: list[int]
    target_height: int
    delay: tuple[int, int]  # ms, uniform: messages overtake each other
    duplicate: float
    loss: float  # until heal_at
    vote_cut: float  # until heal_at: a link carries none of a round's prevotes (or precommits) with
    # this chance, retransmissions included: some validators lock or decide, others move on
    partitions: list[tuple[int, int, list[frozenset[int]]]]  # (from ms, to ms, groups), all before heal_at
    crashes: list[tuple[int, int, int, bool]]  # (validator, at ms, down ms, during an action list)
    byzantine: int | None
    byzantine_modes: tuple[str, ...]
    heal_at: int
    app_delay: tuple[int, int] = (0, 20)
    commit_delay: int = 250  # like CometBFT's timeout_commit: paces heights
    gossip_ms: int = 150
    time_limit: int = 120_000

    @property
    def n(self) -> int:
        return len(self.powers)

    @classmethod
    def from_seed(cls, seed: int) -> Scenario:
        rng = random.Random(seed)
        n = rng.randint(4, 7)
        powers = [1] * n if rng.random() < 0.5 else [rng.randint(1, 10) for _ in range(n)]
        total = sum(powers)
        byzantine, modes = None, ()
        if rng.random() < 0.4:
            candidates = [i for i, p in enumerate(powers) if 3 * p < total]
            if candidates:
                byzantine = rng.choice(candidates)
                modes = tuple(m for m in BYZANTINE_MODES if rng.random() < 0.6) or ("equivocate",)
        heal_at = rng.choice([0, 1000, 2000, 4000])
        loss = rng.choice([0.0, 0.05, 0.2, 0.4]) if heal_at else 0.0
        vote_cut = rng.choice([0.0, 0.0, 0.2, 0.4]) if heal_at else 0.0
        partitions = []
        for _ in range(rng.randint(0, 2) if heal_at else 0):
            start = rng.randrange(heal_at)
            end = rng.randint(start, heal_at)
            members = list(range(n))
            rng.shuffle(members)
            cut = rng.randint(1, n - 1)
            partitions.append((start, end, [frozenset(members[:cut]), frozenset(members[cut:])]))
        honest = [i for i in range(n) if i != byzantine]
        crashes = [(rng.choice(honest), rng.randrange(heal_at + 2000), rng.randint(50, 3000), rng.random() < 0.5)
                   for _ in range(rng.choice([0, 0, 1, 2]))]
        return cls(seed=seed, powers=powers, target_height=rng.randint(3, 6),
                   delay=(1, rng.choice([5, 30, 100, 300])), duplicate=rng.choice([0.0, 0.1, 0.3]), loss=loss,
                   vote_cut=vote_cut,
                   partitions=partitions, crashes=crashes, byzantine=byzantine, byzantine_modes=modes,
                   heal_at=heal_at)

    def describe(self) -> str:
        parts = [f"seed {self.seed}: {self.n} validators, powers {self.powers}, target height {self.target_height}",
                 f"delay {self.delay[0]}-{self.delay[1]} ms, duplicate {self.duplicate}, loss {self.loss} "
                 f"(and {self.vote_cut} of links per round and vote type) "
                 f"and partitions {[(a, b, [sorted(g) for g in gs]) for a, b, gs in self.partitions]} "
                 f"until {self.heal_at} ms",
                 f"crashes (validator, at, down ms, mid-actions) {self.crashes}"]
        if self.byzantine is not None:
            parts.append(f"byzantine validator {self.byzantine}: {', '.join(self.byzantine_modes)}")
        return "\n".join(parts)


@dataclasses.dataclass(eq=False)
class SimNode:
    index: int
    honest: bool
    app: TrivialApp
    machine: StateMachine | None = None
    up: bool = True
    epoch: int = 0  # bumped by a crash: timers and app answers of the old process are dropped
    persisted: SignerState | None = None  # what PersistSignerState wrote
    crash_pending: bool = False
    proofs: dict[int, list[tuple]] = dataclasses.field(default_factory=dict)  # height -> messages that decided it
    _held: dict[bytes, tuple] | None = None  # held_messages, until the machine next changes

    def held(self) -> dict[bytes, tuple]:
        if self._held is None:
            self._held = held_messages(self.machine)
        return self._held

    @property
    def height(self) -> int:
        return self.machine.height if self.machine else self.app.height + 1


class Simulation:
    def __init__(self, scenario: Scenario) -> None:
        self.sc = scenario
        self.rng = random.Random(scenario.seed * 7919 + 1)
        self.now = 0
        self._queue: list[tuple[int, int, str, tuple]] = []
        self._seq = 0
        self.trace: collections.deque[tuple[int, str]] = collections.deque(maxlen=400)
        self.sets: list[ValidatorSet | None] = [None, validator_set(scenario.powers)]
        self.addresses = [address(i) for i in range(scenario.n)]
        self.byzantine_address = None if scenario.byzantine is None else self.addresses[scenario.byzantine]
        self._byzantine_key = None if scenario.byzantine is None else SigningKey(private_key(scenario.byzantine))
        self.nodes = [SimNode(i, i != scenario.byzantine, TrivialApp(f"v{i}")) for i in range(scenario.n)]
        self.decided: dict[int, bytes] = {}  # height -> block hash decided by the honest
        self.proposed: dict[tuple[int, bytes], None] = {}  # (height, block hash) of every signed proposal sent
        self.signed: dict[tuple[bytes, int, int, int], bytes] = {}  # honest (address, h, r, step) -> digest
        self.evidence: list[bytes] = []
        self.messages_delivered = 0
        self.stats: collections.Counter[str] = collections.Counter()  # what the run exercised
        self._cuts: dict[tuple, bool] = {}

    # --- the event queue -----------------------------------------------------------------------

    def at(self, time: int, kind: str, *args) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (time, self._seq, kind, args))

    def log(self, text: str) -> None:
        self.trace.append((self.now, text))

    def validators(self, height: int) -> ValidatorSet:
        while len(self.sets) <= height:
            self.sets.append(self.sets[-1].next_height())
        return self.sets[height]

    def run(self) -> Simulation:
        sc = self.sc
        for node in self.nodes:
            self.at(0, "boot", node)
        for node in self.nodes:
            self.at(1 + self.rng.randrange(sc.gossip_ms), "gossip", node)
        for index, when, down, mid in sc.crashes:
            self.at(when, "crash", self.nodes[index], down, mid)
        # Once healed (and every crashed validator restarted), every honest validator must decide
        # the target height and two heights beyond the highest any had decided by then.
        settled = max([sc.heal_at] + [when + down for _, when, down, _ in sc.crashes])
        goal = None
        while self._queue:
            time, _, kind, args = heapq.heappop(self._queue)
            if time > sc.time_limit:
                break
            if goal is None and time >= settled:
                goal = max(sc.target_height, max(n.app.height for n in self.nodes if n.honest) + 2)
            self.now = time
            getattr(self, "_on_" + kind)(*args)
            if goal is not None and all(n.app.height >= goal for n in self.nodes if n.honest):
                return self
        stuck = {n.index: (n.app.height, repr(n.machine)) for n in self.nodes if n.honest}
        raise InvariantViolation(f"not live: after healing at {settled} ms, honest validators did not all decide "
                                 f"height {goal} by {sc.time_limit} ms: {stuck}")

    # --- processes -------------------------------------------------------------------------

    def _on_boot(self, node: SimNode) -> None:
        height = node.app.height + 1
        signer = Signer(private_key(node.index), CHAIN_ID, node.persisted)
        if signer.state.hrs[0] == height:
            self.stats["resumed at a signed height"] += 1
        amnesia = not node.honest and "amnesia" in self.sc.byzantine_modes
        machine_class = AmnesiacMachine if amnesia else StateMachine
        node.machine = machine_class(chain_id=CHAIN_ID, height=height, validators=self.validators(height),
                                    block_hash=block_hash, signer=signer, timeouts=TIMEOUTS)
        self.log(f"v{node.index} starts at height {height} (signer at {signer.state.hrs})")
        self.execute(node, node.machine.start())

    def _on_crash(self, node: SimNode, down: int, mid_actions: bool) -> None:
        if not node.up:
            return
        if mid_actions:
            node.crash_pending = True  # crash part-way through its next list of actions
            self.at(self.now + down, "restart_if_down", node)
            return
        self.crash(node)
        self.at(self.now + down, "restart_if_down", node)

    def crash(self, node: SimNode) -> None:
        self.log(f"v{node.index} crashes at {node.machine!r}")
        self.stats["crashes"] += 1
        node.up, node.machine, node.crash_pending, node._held = False, None, False, None
        node.epoch += 1

    def _on_restart_if_down(self, node: SimNode) -> None:
        if node.crash_pending:  # it never got to act: crash it now, restart a little later
            self.crash(node)
        if not node.up:
            node.up = True
            self._on_boot(node)

    def _on_input(self, node: SimNode, epoch: int, event) -> None:
        if node.up and node.epoch == epoch:
            self.execute(node, node.machine.handle(event))

    def _on_next_height(self, node: SimNode, epoch: int, height: int) -> None:
        if node.up and node.epoch == epoch:
            self.execute(node, node.machine.start_height(height, self.validators(height)))

    # --- the node: carrying out actions ----------------------------------------------------

    def execute(self, node: SimNode, actions: list) -> None:
        node._held = None
        for action in actions:
            if node.crash_pending and self.rng.random() < 0.4:
                self.crash(node)
                return
            if isinstance(action, PersistSignerState):
                self.record_signed(node, action.state.last)
                node.persisted = action.state
            elif isinstance(action, BroadcastVote):
                self.record_signed(node, action.vote)
                self.broadcast(node, ("vote", action.vote))
            elif isinstance(action, BroadcastProposal):
                self.record_signed(node, action.proposal)
                self.broadcast(node, ("proposal", action.proposal, action.block.data))
            elif isinstance(action, ScheduleTimeout):
                event = TimeoutElapsed(action.height, action.round, action.step)
                self.at(self.now + action.duration_ms, "input", node, node.epoch, event)
            elif isinstance(action, RequestBlock):
                block = node.app.prepare_proposal(action.height, action.round)
                self.at(self.now + self.rng.randint(*self.sc.app_delay), "input", node, node.epoch,
                        BlockProposed(action.height, action.round, block))
            elif isinstance(action, ValidateBlock):
                ok = node.app.process_proposal(action.height, action.round, action.block)
                self.at(self.now + self.rng.randint(*self.sc.app_delay), "input", node, node.epoch,
                        BlockValidated(action.height, action.block.hash, ok))
            elif isinstance(action, Decide):
                self.on_decide(node, action)
            elif isinstance(action, EvidenceFound):
                self.on_evidence(node, action)
            elif isinstance(action, Rejected):
                self.on_rejected(node, action)
            else:
                raise TypeError(f"unknown action {action!r}")
        if node.crash_pending:
            self.crash(node)

    def record_signed(self, node: SimNode, message: SignedVote | SignedProposal | None) -> None:
        """No honest validator signs two different messages for one (height, round, step)."""
        if message is None or not node.honest:
            return
        if isinstance(message, SignedVote):
            v = message.vote
            key, digest = (self.addresses[node.index], v.height, v.round, int(v.step)), v.digest(CHAIN_ID)
        else:
            p = message.proposal
            key, digest = (self.addresses[node.index], p.height, p.round, 1), p.digest(CHAIN_ID)
            self.proposed[(p.height, p.block_hash)] = None
        if self.signed.setdefault(key, digest) != digest:
            raise InvariantViolation(f"v{node.index} double-signed at (height, round, step) {key[1:]}")

    def on_decide(self, node: SimNode, d: Decide) -> None:
        if not node.honest:
            node.app.finalize(d.height, d.block, d.commit)
            self.after_decide(node, d)
            return
        first = self.decided.setdefault(d.height, d.block.hash)
        if first != d.block.hash:
            raise InvariantViolation(f"agreement: v{node.index} decided {d.block.hash.hex()[:12]} at height "
                                     f"{d.height}, another honest validator decided {first.hex()[:12]}")
        if (d.height, d.block.hash) not in self.proposed:
            raise InvariantViolation(f"validity: v{node.index} decided a block never proposed at height {d.height}")
        if not node.app.process_proposal(d.height, d.round, d.block):
            raise InvariantViolation(f"validity: v{node.index} decided an invalid block at height {d.height}")
        try:
            verify_commit(self.validators(d.height), CHAIN_ID, d.height, d.block.hash, d.commit)
        except ConsensusError as exc:
            raise InvariantViolation(f"v{node.index}'s commit for height {d.height} does not verify: {exc}") from None
        node.app.finalize(d.height, d.block, d.commit)
        self.log(f"v{node.index} decides height {d.height} in round {d.round}: {d.block.data!r}")
        self.stats["decided in round 0" if d.round == 0 else "decided in a later round"] += 1
        self.after_decide(node, d)

    def after_decide(self, node: SimNode, d: Decide) -> None:
        node.proofs[d.height] = ([("vote", v) for v in d.commit.votes()]
                                 + [("proposal", d.proposal, d.block.data)])
        self.at(self.now + self.sc.commit_delay, "next_height", node, node.epoch, d.height + 1)

    def on_evidence(self, node: SimNode, found: EvidenceFound) -> None:
        if not node.honest:
            return
        offender = verify_evidence(found.evidence, CHAIN_ID, self.validators(found.evidence.height))
        if offender != self.byzantine_address:
            raise InvariantViolation(f"v{node.index} found evidence against honest {offender.hex()}")
        self.evidence.append(offender)
        self.stats["evidence"] += 1

    def on_rejected(self, node: SimNode, rejected: Rejected) -> None:
        if not node.honest:
            return
        try:
            signer = rejected.message.signer(CHAIN_ID)
        except ConsensusError:
            return
        if signer in self.addresses and self.nodes[self.addresses.index(signer)].honest:
            raise InvariantViolation(f"v{node.index} rejected an honest message {rejected.message!r}: {rejected.error}")
        self.stats["rejected"] += 1

    # --- the network -----------------------------------------------------------------------

    def broadcast(self, node: SimNode, message: tuple) -> None:
        for peer in self.nodes:
            if peer is not node:
                if node.honest:
                    self.send(node.index, peer.index, message)
                else:
                    for m in self.byzantine_messages(node, message):
                        self.send(node.index, peer.index, m)

    def faulty(self, src: int, dst: int) -> bool:
        if self.now >= self.sc.heal_at:
            return False
        if any(start <= self.now < end and not any(src in g and dst in g for g in groups)
               for start, end, groups in self.sc.partitions):
            return True
        return False

    def send(self, src: int, dst: int, message: tuple) -> None:
        if self.faulty(src, dst):
            return
        if self.now < self.sc.heal_at and (self.rng.random() < self.sc.loss or self.vote_cut(src, dst, message)):
            return
        self.at(self.now + self.rng.randint(*self.sc.delay), "deliver", src, dst, message)
        if self.rng.random() < self.sc.duplicate:
            self.at(self.now + self.rng.randint(*self.sc.delay) * 2, "deliver", src, dst, message)

    def vote_cut(self, src: int, dst: int, message: tuple) -> bool:
        if message[0] != "vote" or not self.sc.vote_cut:
            return False
        v = message[1].vote
        key = (src, dst, v.height, v.round, v.type)
        cut = self._cuts.get(key)
        if cut is None:
            cut = self._cuts[key] = self.rng.random() < self.sc.vote_cut
        return cut

    def _on_deliver(self, src: int, dst: int, message: tuple) -> None:
        node = self.nodes[dst]
        if not node.up or self.faulty(src, dst):
            return
        self.messages_delivered += 1
        event = VoteReceived(message[1]) if message[0] == "vote" else ProposalReceived(message[1], message[2])
        self.execute(node, node.machine.handle(event))

    def _on_gossip(self, node: SimNode) -> None:
        """Send each peer what it lacks: at its height, the messages this node has; below it, the
        messages that decided the peer's height."""
        self.at(self.now + self.sc.gossip_ms, "gossip", node)
        if not node.up or not node.honest:
            return
        for peer in self.nodes:
            if peer is node or peer.machine is None or not peer.up:
                continue
            if peer.height < node.height:
                for m in node.proofs.get(peer.height, ()):
                    self.send(node.index, peer.index, m)
            elif peer.height == node.height:
                theirs = peer.held()
                for key, m in node.held().items():
                    if key not in theirs:
                        self.send(node.index, peer.index, m)

    # --- the byzantine validator -----------------------------------------------------------

    def byzantine_messages(self, node: SimNode, message: tuple) -> list[tuple]:
        modes, rng, key = self.sc.byzantine_modes, self.rng, self._byzantine_key
        if "withhold" in modes and rng.random() < 0.3:
            return []
        if message[0] == "proposal":
            p = message[1].proposal
            if "equivocate" in modes and rng.random() < 0.5:
                other = make_block(p.height, f"evil {rng.random()}", valid="invalid" not in modes or rng.random() < 0.5)
                proposal = Proposal(p.height, p.round, p.pol_round, other.hash)
                signed = SignedProposal(proposal, key.sign(proposal.digest(CHAIN_ID)))
                self.proposed[(p.height, other.hash)] = None
                return [("proposal", signed, other.data)]
            if "tamper" in modes and rng.random() < 0.3:
                return [("proposal", message[1], message[2] + b"~")]
            self.proposed[(p.height, p.block_hash)] = None
            return [message]
        v = message[1].vote
        out = []
        if "equivocate" in modes and rng.random() < 0.5:
            choices = [None, make_block(v.height, f"evil {rng.random()}").hash]
            choices += [h for (height, h) in self.proposed if height == v.height]
            other = rng.choice(choices)
            if other != v.block_hash:
                out.append(("vote", signed_vote(key, Vote(v.type, v.height, v.round, other))))
        if "future" in modes and rng.random() < 0.3:
            out.append(("vote", signed_vote(key, Vote(v.type, v.height, v.round + rng.randint(1, 3), None))))
        return out or [message]


def signed_vote(key: SigningKey, vote: Vote) -> SignedVote:
    return SignedVote(vote, key.sign(vote.digest(CHAIN_ID)))


class AmnesiacMachine(StateMachine):
    """A byzantine validator that forgets its lock and valid value at every round (so it
    prevotes and proposes new blocks freely), and signs past its guard."""

    def _start_round(self, round_: int, propose: bool = True) -> None:
        self.locked_round, self.locked_hash = -1, None
        self.valid_round, self.valid_block = -1, None
        self.signer.state = SignerState()
        super()._start_round(round_, propose)


def held_messages(machine: StateMachine) -> dict[bytes, tuple]:
    """What a node has at its height, by signature (gossip's view of a peer's round state)."""
    held = {vote.signature: ("vote", vote) for vote in machine.votes.all_votes()}
    for proposal, block in machine.proposals():
        held[proposal.signature] = ("proposal", proposal, block.data)
    return held


def run_seed(seed: int) -> Simulation:
    """Run one seeded scenario; an InvariantViolation names the seed and how to replay it."""
    scenario = Scenario.from_seed(seed)
    sim = Simulation(scenario)
    try:
        return sim.run()
    except InvariantViolation as exc:
        raise InvariantViolation(f"{exc}\n{scenario.describe()}\n"
                                 f"replay: python -m tests.consensus.sim --seed {seed}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, help="run this one seed and print its trace")
    parser.add_argument("--start", type=int, default=0, help="first seed of a sweep")
    parser.add_argument("--runs", type=int, default=100, help="seeds in a sweep")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.start, args.start + args.runs)
    failed = 0
    for seed in seeds:
        scenario = Scenario.from_seed(seed)
        sim = Simulation(scenario)
        try:
            sim.run()
        except InvariantViolation as exc:
            failed += 1
            print(f"FAIL seed {seed}: {exc}\n{scenario.describe()}")
            if args.seed is not None:
                for time, text in sim.trace:
                    print(f"{time:>8} ms  {text}")
            print(f"replay: python -m tests.consensus.sim --seed {seed}")
            continue
        if args.seed is not None:
            print(scenario.describe())
            for time, text in sim.trace:
                print(f"{time:>8} ms  {text}")
        heights = {n.index: n.app.height for n in sim.nodes}
        print(f"ok seed {seed}: heights {heights} at {sim.now} ms, {sim.messages_delivered} messages, "
              f"{len(sim.evidence)} evidence")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
