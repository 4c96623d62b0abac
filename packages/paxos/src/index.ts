/**
 * `@paxkv/paxos`: Sequence Paxos and Ballot Leader Election as a pure, sans-IO state machine.
 *
 * Start with {@link SequencePaxos}; give it a {@link Storage} ({@link MemoryStorage} for tests);
 * drive it with `handle`, `tick`, `propose`; send what `drainOutbox` returns, apply what
 * `drainDecided` returns. The deterministic simulator lives in `@paxkv/paxos/testing`.
 * @packageDocumentation
 */
export {
  BALLOT_ZERO,
  type Ballot,
  ballotEquals,
  compareBallots,
  formatBallot,
  isBallot,
  isNodeId,
  type NodeId,
} from './ballot.js';
export { BallotLeaderElection, type BleHost } from './ballot-leader-election.js';
export { DEFAULT_PAXOS_CONFIG, type PaxosConfig, resolveConfig, type UnsafeMutation } from './config.js';
export {
  InvalidArgumentError,
  NoLeaderError,
  NotLeaderError,
  OverloadedError,
  PaxosConfigError,
  PaxosError,
  StoppedError,
} from './errors.js';
export {
  type Accept,
  type Accepted,
  type AcceptSync,
  type Checked,
  type Decide,
  type Forward,
  type HeartbeatReply,
  type HeartbeatRequest,
  isPaxosMessage,
  MAX_LOG_INDEX,
  MAX_ROUND,
  type Nack,
  type PaxosMessage,
  type PaxosMessageProblem,
  type PaxosMessageType,
  type PaxosMessageValidation,
  type Prepare,
  type PrepareReq,
  type PromiseMessage,
  type ReadIndexReply,
  type ReadIndexRequest,
  validatePaxosMessage,
} from './messages.js';
export {
  type ConfigNotice,
  type ConfigPaxosMessage,
  type ConfigRecord,
  type ConfigStatus,
  type HeldConfig,
  isReconfigMessage,
  type JoinRequest,
  type JoinState,
  type OutgoingReconfigMessage,
  type ReconfigMessage,
  type ReconfigMessageValidation,
  ReconfigurablePaxos,
  type ReconfigurablePaxosOptions,
  validateReconfigMessage,
} from './reconfiguration.js';
export {
  type DecidedItem,
  type OutgoingMessage,
  type Phase,
  type ReadResult,
  type Role,
  SequencePaxos,
  type SequencePaxosOptions,
} from './sequence-paxos.js';
export {
  formatStopSign,
  isMemberList,
  isStopSign,
  type LogEntry,
  MAX_CONFIG_MEMBERS,
  makeStopSign,
  type StopSign,
} from './stop-sign.js';
export { MemoryStorage, type Snapshot, type Storage } from './storage.js';
