/**
 * Ballot Leader Election (BLE) with quorum-connected candidates, as in OmniPaxos.
 * @module
 */
import { BALLOT_ZERO, type Ballot, compareBallots } from './ballot.js';
import { type HeartbeatReply, type HeartbeatRequest, MAX_ROUND } from './messages.js';

/** What BLE needs from its host. */
export interface BleHost {
  /** Sends a BLE message to a peer. */
  send(to: number, message: HeartbeatRequest | HeartbeatReply): void;
  /** Called when BLE elects a (new) leader ballot. */
  onLeader(ballot: Ballot): void;
  /** The replica's current Paxos promise: an own ballot must exceed it before the replica may lead. */
  promise(): Ballot;
  /** Persists the replica's own election round (so it only grows across restarts). */
  persistRound(round: number): void;
}

/**
 * Rounds that may end early after the leader's session broke: the one that checks whether a peer
 * still hears the leader (and raises this replica's ballot if none does), and the one that elects.
 */
const EXPEDITED_ROUNDS = 2;

/**
 * Rounds in a row that a replica which knows no leader may end as soon as every peer has answered
 * (see {@link BallotLeaderElection} "Start-up"); a round that ends on the clock resets the count.
 */
export const EARLY_ROUNDS_WITHOUT_LEADER = 3;

/** What the test-only mutations of {@link BallotLeaderElection} break (see `UnsafeMutation`). */
export type BleMutation = 'none' | 'raiseOnLeaderSessionBreak' | 'earlyRoundOnMajority' | 'noStartGrace';

/**
 * One replica's BLE state machine. Each round of `heartbeatTicks` ticks it asks every peer for a
 * heartbeat; each reply carries the peer's ballot and whether the peer is quorum-connected. At the end
 * of a round the replica is quorum-connected if it heard a majority (itself included). It keeps the
 * current leader while the leader is among the quorum-connected repliers; it adopts any higher
 * quorum-connected ballot at once; and when the leader has been missing for `electionTimeoutTicks`
 * it raises its own ballot above the leader's, so that the highest quorum-connected replica wins the
 * next round. Only quorum-connected replicas are ever elected.
 *
 * **Broken sessions** ({@link peerDisconnected}): when the host's session to the leader breaks (the
 * peer crashed, or the transport's liveness check declared the link dead), the replica does not wait
 * for the rest of the round nor for the election timeout. It stops vouching for the leader, starts a
 * round at once, and ends it as soon as every peer whose session is up has answered (an expedited
 * round; at most {@link EXPEDITED_ROUNDS} in a row, so a replica that cannot gather a quorum falls
 * back to ticking rounds). If no quorum-connected peer still hears the leader first-hand, it raises
 * its ballot at the end of that round, and the next expedited round elects the highest
 * quorum-connected ballot. A leader that is still alive and heard by a peer is kept: a broken link to
 * one follower never moves leadership (the vouching rule, mutation `raiseOnLeaderSessionBreak`).
 *
 * **Start-up** (until this replica has known a leader for the first time since it was built): a
 * replica that knows no leader ends its round as soon as EVERY peer has answered it (at most {@link EARLY_ROUNDS_WITHOUT_LEADER} rounds in a row),
 * instead of waiting for the round's last tick: waiting longer could not bring another reply, so the
 * round ends with exactly the information a full round would have had. And when a peer asks it for a
 * heartbeat before answering its current round (the peer has just come up: a restarted server opens
 * its groups one by one, and the requests sent to a group before it was open were lost), it asks that
 * peer again, once per round. After a restart of every server, a group elects a few round trips after
 * its replicas are up instead of one to several full rounds later. A restarted replica's own ballot is
 * stale (not above the promise it made before the restart): the replica whose stale ballot tops a
 * start-up round raises it and leads at once with the raised ballot, instead of waiting a round to be
 * elected with it, unless a peer answered that round with a higher ballot (one not quorum-connected yet
 * may be by the next round, and would then take the leadership over). A replica that came up alone ended
 * its rounds unanswered; until it knows a leader, it tells a peer that asks it whether it hears a majority
 * now (the peers that answered its round, and the asker), instead of its stale "not quorum-connected",
 * which would leave its ballot out of the asker's election. A peer that does not answer (down)
 * makes the round end on the clock, as before. Ending early on a mere majority could elect a lower
 * ballot just before the highest one answers, then change leader again (mutation
 * `earlyRoundOnMajority`). Only at start-up: a leader deposed later (a leadership transfer, a higher
 * candidate) becomes leaderless for a moment too, and ending its rounds early then would let it act on
 * replies that do not yet name the new leader, raise and take the leadership back; rounds on the
 * clock give the peers' reports time to name it (the existing vouching rule).
 */
export class BallotLeaderElection {
  /** This replica's own candidacy ballot. */
  ballot: Ballot;
  /** The elected leader ballot, if any. */
  leader: Ballot | undefined = undefined;
  /**
   * Whether this replica heard a majority in its last completed round. It starts `true` so that, at
   * start-up, replies of the first round already name everyone as a candidate and every replica
   * elects the same (highest) ballot instead of itself; a replica that is in fact cut off loses the
   * flag at the end of its first round.
   */
  quorumConnected = true;
  /** Whether, in the last completed round, the leader itself answered (or is us, quorum-connected). */
  private leaderDirect = false;
  private round = 0;
  private ticksInRound = 0;
  private ticksSinceLeaderSeen = 0;
  private readonly replies = new Map<number, HeartbeatReply>();
  private readonly majority: number;
  /** Peers whose session is broken (reported by the host, cleared when they are heard again). */
  private readonly down = new Set<number>();
  /** How many more rounds may end as soon as every peer with a live session has answered. */
  private expedite = 0;
  /** Ticks since construction (round ends are kept on multiples of `heartbeatTicks`). */
  private ticks = 0;
  /** The current round started off schedule: end it on the next scheduled tick (see {@link tick}). */
  private realign = false;
  /** Rounds ended early without a leader since the last round that ended on the clock. */
  private earlyRounds = 0;
  /** No leader was known yet since construction (the start-up rule applies only then). */
  private startingUp = true;
  /**
   * This replica claimed the leadership ({@link claim}) and has not yet ended a round: peers that ask
   * us first are asked again, as at start-up (see "Start-up"), and an unanswered round keeps the
   * quorum-connected flag. Never set under the `noStartGrace` mutation.
   */
  private claimed = false;
  /** Peers asked again in this round because they asked us first (see "Start-up"). */
  private readonly askedAgain = new Set<number>();

  constructor(
    private readonly pid: number,
    private readonly peers: readonly number[],
    initialRound: number,
    private readonly heartbeatTicks: number,
    private readonly electionTimeoutTicks: number,
    private readonly host: BleHost,
    private readonly mutation: BleMutation = 'none',
  ) {
    this.ballot = { n: initialRound, pid };
    this.majority = Math.floor((peers.length + 1) / 2) + 1;
  }

  /**
   * Advances time by one tick; ends the round and starts a new one every `heartbeatTicks`. Rounds end
   * on ticks that are multiples of `heartbeatTicks` (counted from construction), so that the groups of
   * one host, ticked together, send their heartbeats in the same turn (the host coalesces them). A
   * round started off that schedule (an expedited election) is followed by one round of between half
   * and one and a half `heartbeatTicks` that ends on the schedule again.
   */
  tick(): void {
    this.ticks++;
    this.ticksInRound++;
    this.ticksSinceLeaderSeen++;
    const onSchedule = this.ticks % this.heartbeatTicks === 0;
    const due = this.realign
      ? onSchedule && this.ticksInRound * 2 >= this.heartbeatTicks
      : this.ticksInRound >= this.heartbeatTicks;
    if (due) {
      if (onSchedule) this.realign = false;
      this.earlyRounds = 0;
      this.endRound();
      this.startRound();
    }
  }

  /** Starts the first round at once (called by the host on construction). */
  startRound(): void {
    this.round++;
    this.ticksInRound = 0;
    this.replies.clear();
    this.askedAgain.clear();
    for (const p of this.peers) this.host.send(p, { type: 'HeartbeatRequest', round: this.round });
  }

  /**
   * The host's session to `peer` broke. When `peer` is the leader (and not this replica), the
   * election is expedited: see the class comment. Idempotent until the peer is heard again.
   */
  peerDisconnected(peer: number): void {
    if (peer === this.pid || !this.peers.includes(peer) || this.down.has(peer)) return;
    this.down.add(peer);
    const leader = this.leader;
    if (leader === undefined || leader.pid !== peer) {
      // A round waiting only for this peer's reply may now end early.
      this.endEarlyIfAnswered();
      return;
    }
    // We no longer hear the leader first-hand: stop vouching for it at once.
    this.leaderDirect = false;
    this.expedite = EXPEDITED_ROUNDS;
    this.startRound();
    this.realign = true;
    this.endEarlyIfAnswered();
  }

  /** The host's session to `peer` is up again. */
  peerConnected(peer: number): void {
    this.down.delete(peer);
  }

  /** Handles a heartbeat request: answers with this replica's ballot and connectivity. */
  handleRequest(from: number, msg: HeartbeatRequest): void {
    this.down.delete(from);
    this.host.send(from, {
      type: 'HeartbeatReply',
      round: msg.round,
      ballot: this.ballot,
      quorumConnected: this.quorumConnected || this.hearsMajorityWith(from),
      leader: this.leaderDirect && this.leader !== undefined ? this.leader : BALLOT_ZERO,
    });
    // Without a leader, a peer that asks before it answered this round may have missed our request
    // (it was not up yet): ask it again, once per round (see "Start-up").
    if (
      ((this.startingUp && this.leader === undefined) || this.claimed) &&
      !this.replies.has(from) &&
      !this.askedAgain.has(from) &&
      this.peers.includes(from)
    ) {
      this.askedAgain.add(from);
      this.host.send(from, { type: 'HeartbeatRequest', round: this.round });
    }
  }

  /**
   * At start-up without a leader: whether this replica hears a majority now, counting the peers that
   * answered its current round and `from`, which is asking it (see "Start-up"). A replica that came up
   * alone ended its rounds unanswered and reports itself not quorum-connected until a round ends after
   * its peers came up; its peers would meanwhile leave its ballot out of their elections and elect one
   * of their own, then change leader again when it is counted.
   */
  private hearsMajorityWith(from: number): boolean {
    if (!this.startingUp || this.leader !== undefined || !this.peers.includes(from)) return false;
    const heard = this.replies.has(from) ? this.replies.size : this.replies.size + 1;
    return heard + 1 >= this.majority;
  }

  /** Records a heartbeat reply of the current round; replies of other rounds are stale and ignored. */
  handleReply(from: number, msg: HeartbeatReply): void {
    if (msg.ballot.pid !== from) return;
    this.down.delete(from);
    if (msg.round !== this.round) return;
    this.replies.set(from, msg);
    this.endEarlyIfAnswered();
    this.endEarlyWithoutLeader();
  }

  /**
   * Without a leader, ends the round once every peer has answered (see "Start-up"), at most
   * {@link EARLY_ROUNDS_WITHOUT_LEADER} rounds in a row.
   */
  private endEarlyWithoutLeader(): void {
    if (!this.startingUp || this.leader !== undefined || this.earlyRounds >= EARLY_ROUNDS_WITHOUT_LEADER)
      return;
    const need = this.mutation === 'earlyRoundOnMajority' ? this.majority - 1 : this.peers.length;
    if (this.replies.size < need) return;
    this.earlyRounds++;
    this.endRound();
    this.startRound();
    this.realign = true;
  }

  /**
   * Ends an expedited round once every peer whose session is up has answered (waiting longer could
   * not change the outcome), and starts the next one.
   */
  private endEarlyIfAnswered(): void {
    while (this.expedite > 0) {
      for (const p of this.peers) {
        if (!this.down.has(p) && !this.replies.has(p)) return;
      }
      this.expedite--;
      this.endRound();
      this.startRound();
      this.realign = true;
    }
  }

  /**
   * A gentle leadership transfer to this replica: raises its ballot above the leader it follows (and
   * above its promise), so that the next round, whose replies carry the new ballot, elects it if it is
   * quorum-connected (the highest quorum-connected ballot wins). Nothing is lost: the new leader's
   * prepare phase adopts every accepted entry, like any election. Returns false (and does nothing)
   * while this replica leads, knows no leader, or is not quorum-connected.
   */
  campaign(): boolean {
    const leader = this.leader;
    if (leader === undefined || leader.pid === this.pid || !this.quorumConnected) return false;
    const before = this.ballot.n;
    this.raise(Math.max(leader.n, this.host.promise().n));
    return this.ballot.n > before;
  }

  /**
   * Elects this replica's own ballot at once, without a round (see `SequencePaxosOptions.claimLeadership`):
   * only at start-up, when no leader is known; the next round end keeps it while it is the highest
   * quorum-connected ballot, like any election. Returns whether it claimed.
   */
  claim(): boolean {
    if (this.leader !== undefined || !this.quorumConnected) return false;
    if (compareBallots(this.ballot, this.host.promise()) <= 0) return false;
    this.elect(this.ballot);
    // The peers of a configuration that just started start it a little later than its claimant: the
    // requests of this round reached them before they ran it and got no answer. Without asking them
    // again when they ask us, the round ends unanswered, the claimant reports itself not
    // quorum-connected for a whole round, and a peer that joins then elects itself over it (a second
    // leader change in every reconfiguration whose leader left).
    this.claimed = this.mutation !== 'noStartGrace';
    return true;
  }

  /**
   * Follows `ballot` as the elected leader at once, without a round (see
   * `SequencePaxosOptions.presumedLeader`): only at start-up, when no leader is known and `ballot` is
   * above this replica's own. Returns whether it did.
   */
  presume(ballot: Ballot): boolean {
    if (this.leader !== undefined || ballot.pid === this.pid || compareBallots(ballot, this.ballot) <= 0)
      return false;
    this.elect(ballot);
    return true;
  }

  /**
   * Raises this replica's own ballot above `above` (and persists the round). Never past
   * {@link MAX_ROUND}: a replica asked to go beyond it keeps its ballot (it cannot lead above the bound,
   * and a round past it would be dropped by every peer and refused by its own storage).
   */
  private raise(above: number): void {
    const n = Math.max(above, this.ballot.n) + 1;
    if (n > MAX_ROUND) return;
    this.ballot = { n, pid: this.pid };
    this.host.persistRound(n);
  }

  private endRound(): void {
    const heard = this.replies.size + 1 >= this.majority;
    // A claimant's first round went out before its peers ran the configuration (they start it a little
    // later, from the same stop-sign or from a transferred state): an unanswered first round says
    // nothing about its connectivity, so it does not drop the flag (the next round decides).
    this.quorumConnected = heard || this.claimed;
    this.claimed = false;
    let top: Ballot | undefined;
    let leaderSeen = false;
    const leader = this.leader;
    if (this.quorumConnected) {
      top = this.ballot;
      if (leader !== undefined && compareBallots(leader, this.ballot) === 0) leaderSeen = true;
    }
    for (const r of this.replies.values()) {
      if (!r.quorumConnected) continue;
      if (top === undefined || compareBallots(r.ballot, top) > 0) top = r.ballot;
      if (leader !== undefined && compareBallots(leader, r.ballot) === 0) leaderSeen = true;
    }
    this.leaderDirect = leaderSeen;
    // A quorum-connected peer that hears the leader directly vouches for it: with chained or partial
    // links we may not hear the leader ourselves, yet it leads a quorum. Reports are first-hand only,
    // so replicas cannot keep a dead leader alive by vouching for each other.
    if (!leaderSeen && leader !== undefined) {
      for (const r of this.replies.values()) {
        if (r.quorumConnected && compareBallots(r.leader, leader) === 0) leaderSeen = true;
      }
    }
    if (leaderSeen) {
      this.ticksSinceLeaderSeen = 0;
      this.expedite = 0;
    }
    if (top !== undefined && (leader === undefined || compareBallots(top, leader) > 0)) {
      this.elect(top);
      return;
    }
    const promise = this.host.promise();
    if (leader !== undefined && leader.pid === this.pid && compareBallots(leader, promise) < 0) {
      // We are the elected leader, but we promised a higher ballot since (a competing candidate
      // prepared us, or a Nack told us): our ballot can never win a quorum again.
      // If a quorum-connected peer follows a leader at least that high, that leader is alive and
      // leads a quorum we cannot see (chained connectivity): follow it, do not compete with it.
      let followed: Ballot | undefined;
      for (const r of this.replies.values()) {
        if (r.quorumConnected && compareBallots(r.leader, promise) >= 0) {
          if (followed === undefined || compareBallots(r.leader, followed) > 0) followed = r.leader;
        }
      }
      if (followed !== undefined && followed.pid !== this.pid) {
        this.leader = followed;
        this.ticksSinceLeaderSeen = 0;
        this.host.onLeader(followed);
        return;
      }
      // Otherwise step back and let the next round decide: if the higher candidate answers it, it is
      // elected; if it vanished (it prepared some replicas, then crashed or was cut off), our own
      // ballot tops the round and `elect` raises it above the promise, to win the round after.
      // (Raising here, on one round without its reply, took the leadership from a healthy
      // candidate whose reply was merely late: 13 of 300 fault-free simulated start-ups.)
      this.leader = undefined;
      this.ticksSinceLeaderSeen = 0;
      return;
    }
    // A leader whose session to us broke is treated as not heard from since long ago (unless a peer
    // vouched for it above); the mutation also ignores the vouching.
    const leaderDown = leader !== undefined && leader.pid !== this.pid && this.down.has(leader.pid);
    if (leaderDown && this.mutation === 'raiseOnLeaderSessionBreak') leaderSeen = false;
    if (
      !leaderSeen &&
      leader !== undefined &&
      this.quorumConnected &&
      (leaderDown || this.ticksSinceLeaderSeen >= this.electionTimeoutTicks)
    ) {
      // The leader is gone (or lost its quorum): raise above it so a quorum-connected replica takes over.
      // Only a quorum-connected replica raises: an isolated one could not win, and a high ballot would
      // make it disrupt a healthy leader when it comes back.
      this.raise(Math.max(leader.n, this.host.promise().n));
      this.leader = undefined;
      this.ticksSinceLeaderSeen = 0;
    }
  }

  /**
   * Whether a reply of this round carries a ballot above `own`, quorum-connected or not: a peer that
   * may become quorum-connected and win the next round, so a start-up raise waits for that round.
   */
  private outranked(own: Ballot): boolean {
    for (const r of this.replies.values()) if (compareBallots(r.ballot, own) > 0) return true;
    return false;
  }

  private elect(top: Ballot): void {
    if (top.pid === this.pid && compareBallots(top, this.host.promise()) <= 0) {
      // Our ballot is stale (we promised as high before, e.g. before a restart): raise above it.
      const before = this.ballot.n;
      this.raise(this.host.promise().n);
      // At start-up, lead with the raised ballot at once (see "Start-up"); later, win the next round.
      if (!this.startingUp || this.ballot.n === before || this.outranked(top)) return;
      top = this.ballot;
    }
    this.leader = top;
    this.startingUp = false;
    this.ticksSinceLeaderSeen = 0;
    this.host.onLeader(top);
  }
}
