/**
 * @paxkv/kvstore: the replicated key-value state machine with exactly-once sessions, the durable
 * write-ahead log with group commit and crash recovery, snapshots, replica groups and key partitioning.
 * @packageDocumentation
 */
export { CorruptDataError } from './codec.js';
export { isKvCommand, isKvLogEntry, type KvCommand } from './command.js';
export { DEFAULT_PARTITIONS, defaultPartitionOf, partitionOf } from './partition.js';
export {
  type ConfigurationEvent,
  type Consistency,
  DEFAULT_REPLICA_GROUP_CONFIG,
  type FlushableStorage,
  type GroupConfiguration,
  type OpenReplicaGroupOptions,
  PREFERRED_LEADER_INITIAL_ROUND,
  ReplicaGroup,
  type ReplicaGroupConfig,
  type ReplicaGroupOptions,
  type ReplicaGroupStorage,
  type SubmitOptions,
  type SubmitResult,
} from './replica-group.js';
export {
  type CheckedGroupMessage,
  checkGroupMessage,
  DEFAULT_SNAPSHOT_TRANSFER_CONFIG,
  DEFAULT_TRANSFER_BUDGET_BYTES,
  type GroupMessage,
  isSnapshotTransferMessage,
  MAX_INCOMING_TRANSFERS,
  MAX_TRANSFER_CHUNK_BYTES,
  type ReceiveOutcome,
  resolveSnapshotTransferConfig,
  type SnapshotChunk,
  type SnapshotChunkAck,
  SnapshotTransfer,
  type SnapshotTransferConfig,
  type SnapshotTransferEvent,
  type SnapshotTransferMessage,
  type SnapshotTransferStats,
  TRANSFER_DIGEST_BYTES,
  TransferBudget,
  type TransferKind,
} from './snapshot-transfer.js';
export {
  type ApplyOutcome,
  DEFAULT_STATE_MACHINE_CONFIG,
  KvStateMachine,
  type StateMachineConfig,
  valuesEqual,
} from './state-machine.js';
export { crc32c } from './storage/crc32c.js';
export type { AppendFile, Disk } from './storage/disk.js';
export { DurableStorage, type DurableStorageOptions, snapshotFileName } from './storage/durable-storage.js';
export {
  configDir,
  configSlot,
  configTag,
  type FlushableConfigStorage,
  type GroupRecoveryStats,
  GroupStorage,
  type GroupStorageOptions,
  type GroupStorageStats,
  MAX_GROUP_PARTITION,
} from './storage/group-storage.js';
export { NodeDisk } from './storage/node-disk.js';
export {
  checkRecord,
  decodeRecordPayload,
  encodeRecordPayload,
  MAX_SNAPSHOT_BYTES,
  type StoredBallot,
  type StoredConfig,
  type WalRecord,
} from './storage/records.js';
export { type CrashOptions, SimDisk, type SimDiskOptions } from './storage/sim-disk.js';
export {
  DEFAULT_WAL_OPTIONS,
  type FsyncMode,
  MAX_PARTITION,
  type PartitionHandle,
  type PartitionRecords,
  type StorageLogger,
  silentLogger,
  WAL_HEADER_BYTES,
  WAL_MARKER_RECORD_BYTES,
  WAL_MARKER_TAG,
  WalCorruptError,
  WalFailedError,
  WalFormatError,
  type WalOptions,
  WalRecordError,
  type WalRecovery,
  type WalStats,
  WriteAheadLog,
} from './storage/wal.js';
export { WARM_UP_WRITES, type WarmUpOptions, type WarmUpReport, warmUpReplicaGroups } from './warm-up.js';
