/**
 * @paxkv/linearizability-checker: a fast, reusable linearizability checker (Wing–Gong–Lowe search
 * with P-compositionality) for histories from any system, with readers for JSON-lines, Jepsen EDN
 * and Porcupine's formats, built-in and user-defined models, and an HTML report.
 * @packageDocumentation
 */
export {
  type CheckOptions,
  type CheckProgress,
  type CheckResult,
  check,
  checkSync,
  closeWorkerPool,
  DEFAULT_CHECK_OPTIONS,
  type PartitionResult,
  type Verdict,
} from './check.js';
export {
  type CompactColumns,
  CompactHistory,
  CompactHistoryBuilder,
  toCompact,
  ValueTable,
} from './compact.js';
export {
  type CommittedChange,
  type CoordinationCheck,
  checkLeaseHistory,
  checkLockHistory,
  checkWatchStreams,
  type FencedWrite,
  type LeaseCheckOptions,
  type LeaseEvent,
  type LeaseHistory,
  type LockRecord,
  MAX_VIOLATIONS_LISTED,
  type ObservedEvent,
  type WatchCheckOptions,
  type WatchStreamRecord,
} from './coordination.js';
export {
  DEFAULT_EDN_MAX_DEPTH,
  type EdnForm,
  EdnSymbol,
  type EdnValue,
  ednGet,
  Keyword,
  parseEdn,
  readEdn,
  type Tagged,
} from './edn.js';
export {
  HistoryParseError,
  InvalidOperationError,
  ModelError,
  UnknownModelError,
  UsageError,
} from './errors.js';
export { type FastOutcome, fastCheck, type RegisterOp, verifyLinearization } from './fast.js';
export { detectFormat, FORMATS, type Format, readHistory, readHistoryFile } from './formats.js';
export {
  DEFAULT_GENERATE_OPTIONS,
  type GenerateOptions,
  type GenerateSummary,
  generateHistory,
} from './generate.js';
export {
  buildHistory,
  type History,
  type Operation,
  type OperationSpec,
  type OperationStatus,
} from './history.js';
export {
  type FailEvent,
  formatEvent,
  type HistoryEvent,
  HistoryRecorder,
  type HistoryRecorderOptions,
  type InfoEvent,
  type InvokeEvent,
  JSONL_FORMAT_VERSION,
  type JsonlHeader,
  JsonlReader,
  type OkEvent,
  readJsonl,
  readJsonlFile,
} from './jsonl.js';
export {
  compareKeysUtf8,
  hashTagOfKey,
  type KvTxnCell,
  type KvTxnCompare,
  type KvTxnInput,
  type KvTxnKeyOutput,
  type KvTxnOutput,
  type KvTxnRequest,
  type KvTxnState,
  kvTxnModel,
} from './kv-txn.js';
export { defineModel, type Model, type StepResult } from './model.js';
export {
  builtinModels,
  casRegisterModel,
  createKvModel,
  etcdModel,
  getBuiltinModel,
  type KvCell,
  type KvInput,
  type KvModelOptions,
  type KvOutput,
  type KvState,
  kvModel,
  porcupineKvModel,
  type RegisterInput,
  type RegisterOutput,
  type RegisterValue,
  registerModelInstance as registerModel,
} from './models.js';
export { OnlineChecker, type OnlineCheckerOptions } from './online.js';
export { readPorcupineEtcd, readPorcupineKv } from './porcupine.js';
export {
  DEFAULT_HTML_OPTIONS,
  formatText,
  type HtmlOptions,
  opAccessor,
  renderHtml,
  replay,
  type TextOptions,
} from './report.js';
export {
  DEFAULT_SEARCH_LIMITS,
  type PartitionOps,
  PartitionSearch,
  partitionOpsOf,
  type SearchLimits,
  type SearchOutcome,
  searchPartition,
} from './search.js';
export {
  DEFAULT_SHRINK_TIMEOUT_MS,
  type ShrinkOptions,
  type ShrinkResult,
  shrinkPartition,
} from './shrink.js';
