/**
 * Every message of the paxkv wire protocol, grouped by channel, with its zod schema, its inferred
 * type and a parse function that never throws. Each message has a `type` tag.
 *
 * Channels and their directions:
 * - client -> server: `kv`, `lookup`, `status`, `member.list|add|remove`; server -> client: `kv.ok`,
 *   `lookup.ok`, `status.ok`, `member.list.ok`, `member.ok`, `error` (membership: see `./membership.ts`).
 *   Streams: `watch`, `watch.cancel`; server -> client `watch.ok`, `watch.events`, `watch.end` (see `./watch.ts`).
 * - server -> bootstrap: `checkin`, `heartbeat`; bootstrap -> server: `checkin.ok`, `table.push`,
 *   `members`, `error`.
 * - server <-> server (peer): `peer.hello`, `paxos`, and forwarded client requests (`kv`) with their
 *   replies (`kv.ok`, `error`).
 *
 * To extend a channel, spread its `...Schemas` map into a new {@link defineMessageSet} call.
 * @module
 */
import { z } from 'zod';
import { ERROR_CODES, errorToWire, KeyTooLargeError } from '../errors.js';
import {
  LoginOkSchema,
  LoginRequestSchema,
  RoleRequestSchema,
  UserOkSchema,
  UserRequestSchema,
} from './auth.js';
import { ClusterStatusSchema, LookupTableSchema, MemberSchema } from './cluster.js';
import { KvOpSchema, KvResultSchema } from './kv.js';
import { checkKvOpLimits, DEFAULT_PROTOCOL_LIMITS, type ProtocolLimits, utf8ByteLength } from './limits.js';
import {
  GroupConfigurationSchema,
  GroupReconfigureOkSchema,
  GroupReconfigureRequestSchema,
  MemberAddRequestSchema,
  MemberListOkSchema,
  MemberListRequestSchema,
  MemberOkSchema,
  MemberRejoinRequestSchema,
  MemberRemoveRequestSchema,
  MemberSeedRequestSchema,
} from './membership.js';
import { defineMessageSet, type MessageOf, type ParseResult } from './message-set.js';
import {
  AddressSchema,
  LeaderHintSchema,
  NodeIdSchema,
  RequestIdSchema,
  SessionSchema,
} from './primitives.js';
import {
  WatchCancelSchema,
  WatchEndSchema,
  WatchEventsSchema,
  WatchOkSchema,
  type WatchRequest,
  WatchRequestSchema,
} from './watch.js';

// ---- client -> server ------------------------------------------------------------------------

/** Read consistency of a `kv` request. `stale` allows a follower to answer from its local state. */
export const ConsistencySchema = z.enum(['linearizable', 'stale']);

/**
 * A KV operation. `session` makes a write exactly-once; `consistency` defaults to `linearizable`.
 * Also used between servers to forward a request to the leader of the key's group.
 */
export const KvRequestSchema = z.object({
  type: z.literal('kv'),
  id: RequestIdSchema,
  op: KvOpSchema,
  session: SessionSchema.optional(),
  consistency: ConsistencySchema.optional(),
});

/** Asks for the current lookup table. */
export const LookupRequestSchema = z.object({ type: z.literal('lookup'), id: RequestIdSchema });

/** Asks for the node's view of the cluster. */
export const StatusRequestSchema = z.object({ type: z.literal('status'), id: RequestIdSchema });

/** Messages a server accepts from clients, by tag. */
export const ClientRequestSchemas = {
  kv: KvRequestSchema,
  lookup: LookupRequestSchema,
  status: StatusRequestSchema,
  watch: WatchRequestSchema,
  'watch.cancel': WatchCancelSchema,
  'member.list': MemberListRequestSchema,
  'member.add': MemberAddRequestSchema,
  'member.remove': MemberRemoveRequestSchema,
  'member.seed': MemberSeedRequestSchema,
  'member.rejoin': MemberRejoinRequestSchema,
  login: LoginRequestSchema,
  user: UserRequestSchema,
  role: RoleRequestSchema,
  'group.reconfigure': GroupReconfigureRequestSchema,
} as const;

// ---- server -> client ------------------------------------------------------------------------

/**
 * Answer to `kv`. `stale: true` marks a result served by a stale read. `leader`: the partition's leader
 * that served a request this server forwarded (it does not lead the partition): send the partition's
 * next requests there, one hop shorter.
 */
export const KvOkSchema = z.object({
  type: z.literal('kv.ok'),
  id: RequestIdSchema,
  result: KvResultSchema,
  stale: z.boolean().optional(),
  leader: LeaderHintSchema.optional(),
});

/** Answer to `lookup`. */
export const LookupOkSchema = z.object({
  type: z.literal('lookup.ok'),
  id: RequestIdSchema,
  table: LookupTableSchema,
});

/** Answer to `status`. */
export const StatusOkSchema = z.object({
  type: z.literal('status.ok'),
  id: RequestIdSchema,
  status: ClusterStatusSchema,
});

/**
 * A failed request. `id` is null when the failing request's id could not be read. `leaderHint`
 * comes with `NOT_LEADER` when the sender knows the leader; `configuration` with
 * `CONFIGURATION_CHANGED`: the configuration the refusing leader runs (bounded like every
 * configuration on the wire; absent from older senders). Rebuild the typed error with `errorFromWire`.
 */
export const ErrorMessageSchema = z.object({
  type: z.literal('error'),
  id: RequestIdSchema.nullable(),
  code: z.enum(ERROR_CODES),
  message: z.string(),
  leaderHint: LeaderHintSchema.optional(),
  configuration: GroupConfigurationSchema.optional(),
});

/** Messages a client accepts from a server, by tag. */
export const ServerResponseSchemas = {
  'kv.ok': KvOkSchema,
  'lookup.ok': LookupOkSchema,
  'status.ok': StatusOkSchema,
  'watch.ok': WatchOkSchema,
  'watch.events': WatchEventsSchema,
  'watch.end': WatchEndSchema,
  'member.list.ok': MemberListOkSchema,
  'member.ok': MemberOkSchema,
  'login.ok': LoginOkSchema,
  'user.ok': UserOkSchema,
  'group.reconfigure.ok': GroupReconfigureOkSchema,
  error: ErrorMessageSchema,
} as const;

// ---- bootstrap ---------------------------------------------------------------------------------

/** A server announces itself to the bootstrap server; a restarting server passes its old `nodeId`. */
export const CheckinSchema = z.object({
  type: z.literal('checkin'),
  address: AddressSchema,
  nodeId: NodeIdSchema.optional(),
});

/** The bootstrap server's answer: the node's id and the table, if the cluster has started. */
export const CheckinOkSchema = z.object({
  type: z.literal('checkin.ok'),
  nodeId: NodeIdSchema,
  table: LookupTableSchema.nullable(),
});

/** A server's periodic liveness signal to the bootstrap server. */
export const HeartbeatSchema = z.object({ type: z.literal('heartbeat'), nodeId: NodeIdSchema });

/** The bootstrap server pushes a new lookup table. */
export const TablePushSchema = z.object({ type: z.literal('table.push'), table: LookupTableSchema });

/** The bootstrap server pushes the membership list. */
export const MembersSchema = z.object({ type: z.literal('members'), members: z.array(MemberSchema) });

/** Messages the bootstrap server accepts from servers, by tag. */
export const BootstrapRequestSchemas = {
  checkin: CheckinSchema,
  heartbeat: HeartbeatSchema,
} as const;

/** Messages a server accepts from the bootstrap server, by tag. */
export const BootstrapReplySchemas = {
  'checkin.ok': CheckinOkSchema,
  'table.push': TablePushSchema,
  members: MembersSchema,
  error: ErrorMessageSchema,
} as const;

// ---- peer --------------------------------------------------------------------------------------

/** First message on a peer connection: who is calling. */
export const PeerHelloSchema = z.object({ type: z.literal('peer.hello'), from: NodeIdSchema });

/**
 * A Sequence Paxos message of one partition's group. `msg` is opaque here: the paxos package's
 * `isPaxosMessage` checks it.
 */
export const PaxosEnvelopeSchema = z.object({
  type: z.literal('paxos'),
  partition: z.number().int().nonnegative(),
  from: NodeIdSchema,
  msg: z.unknown(),
});

/** Most paxos messages one `paxos.batch` frame may carry. */
export const MAX_PAXOS_BATCH = 4096;

const beatInt = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/**
 * A coalesced Ballot Leader Election heartbeat request of one partition's group:
 * `[partition, round]` (the paxos `HeartbeatRequest` without its envelope).
 */
export const BeatRequestSchema = z.tuple([beatInt, beatInt]);

/**
 * A coalesced BLE heartbeat reply of one partition's group:
 * `[partition, round, ballot.n, ballot.pid, quorumConnected (0|1), leader.n, leader.pid]`.
 */
export const BeatReplySchema = z.tuple([
  beatInt,
  beatInt,
  beatInt,
  beatInt,
  z.union([z.literal(0), z.literal(1)]),
  beatInt,
  beatInt,
]);

/**
 * The paxos messages of many partitions' groups from one server to one peer, sent in one event-loop
 * turn: one frame instead of one per message. Each `msg` is opaque here, as in
 * {@link PaxosEnvelopeSchema}. The BLE heartbeats of every group are coalesced into `beats`, one
 * positional tuple each ({@link BeatRequestSchema}, {@link BeatReplySchema}) instead of one enveloped
 * message each, as CockroachDB coalesces the heartbeats of its ranges; the receiver turns each back
 * into the paxos message and checks it like any other. At least one `msgs` or `beats` entry.
 */
export const PaxosBatchSchema = z
  .object({
    type: z.literal('paxos.batch'),
    from: NodeIdSchema,
    msgs: z
      .array(z.object({ partition: z.number().int().nonnegative(), msg: z.unknown() }))
      .max(MAX_PAXOS_BATCH),
    beats: z
      .array(z.union([BeatRequestSchema, BeatReplySchema]))
      .max(MAX_PAXOS_BATCH)
      .optional(),
  })
  .refine((b) => b.msgs.length + (b.beats?.length ?? 0) > 0, {
    message: 'a paxos.batch carries at least one message or heartbeat',
  });

/** Messages exchanged between servers, by tag (forwarded `kv` requests and their replies included). */
export const PeerMessageSchemas = {
  'peer.hello': PeerHelloSchema,
  paxos: PaxosEnvelopeSchema,
  'paxos.batch': PaxosBatchSchema,
  kv: KvRequestSchema,
  'kv.ok': KvOkSchema,
  // Membership requests forwarded to the metadata group's leader, and the answers.
  'member.list': MemberListRequestSchema,
  'member.add': MemberAddRequestSchema,
  'member.remove': MemberRemoveRequestSchema,
  'member.seed': MemberSeedRequestSchema,
  'member.rejoin': MemberRejoinRequestSchema,
  'group.reconfigure': GroupReconfigureRequestSchema,
  'member.list.ok': MemberListOkSchema,
  'member.ok': MemberOkSchema,
  'group.reconfigure.ok': GroupReconfigureOkSchema,
  error: ErrorMessageSchema,
} as const;

// ---- sets and types ----------------------------------------------------------------------------

/** The client -> server channel. */
export const ClientRequests = defineMessageSet('client request', ClientRequestSchemas);
/** The server -> client channel. */
export const ServerResponses = defineMessageSet('server response', ServerResponseSchemas);
/** The server -> bootstrap channel. */
export const BootstrapRequests = defineMessageSet('bootstrap request', BootstrapRequestSchemas);
/** The bootstrap -> server channel. */
export const BootstrapReplies = defineMessageSet('bootstrap reply', BootstrapReplySchemas);
/** The server <-> server channel. */
export const PeerMessages = defineMessageSet('peer message', PeerMessageSchemas);

/** Read consistency. */
export type Consistency = z.infer<typeof ConsistencySchema>;
/** A `kv` request. */
export type KvRequest = z.infer<typeof KvRequestSchema>;
/** A `lookup` request. */
export type LookupRequest = z.infer<typeof LookupRequestSchema>;
/** A `status` request. */
export type StatusRequest = z.infer<typeof StatusRequestSchema>;
/** Any client -> server message. */
export type ClientRequest = MessageOf<typeof ClientRequestSchemas>;
/** A `kv.ok` reply. */
export type KvOk = z.infer<typeof KvOkSchema>;
/** A `lookup.ok` reply. */
export type LookupOk = z.infer<typeof LookupOkSchema>;
/** A `status.ok` reply. */
export type StatusOk = z.infer<typeof StatusOkSchema>;
/** An `error` reply. */
export type ErrorMessage = z.infer<typeof ErrorMessageSchema>;
/** Any server -> client message. */
export type ServerResponse = MessageOf<typeof ServerResponseSchemas>;
/** A `checkin`. */
export type Checkin = z.infer<typeof CheckinSchema>;
/** A `checkin.ok`. */
export type CheckinOk = z.infer<typeof CheckinOkSchema>;
/** A `heartbeat`. */
export type Heartbeat = z.infer<typeof HeartbeatSchema>;
/** A `table.push`. */
export type TablePush = z.infer<typeof TablePushSchema>;
/** A `members` push. */
export type MembersMessage = z.infer<typeof MembersSchema>;
/** Any server -> bootstrap message. */
export type BootstrapRequest = MessageOf<typeof BootstrapRequestSchemas>;
/** Any bootstrap -> server message. */
export type BootstrapReply = MessageOf<typeof BootstrapReplySchemas>;
/** A `peer.hello`. */
export type PeerHello = z.infer<typeof PeerHelloSchema>;
/** A `paxos` envelope. */
export type PaxosEnvelope = z.infer<typeof PaxosEnvelopeSchema>;
/** A `paxos.batch` frame. */
export type PaxosBatch = z.infer<typeof PaxosBatchSchema>;
/** Any server <-> server message. */
export type PeerMessage = MessageOf<typeof PeerMessageSchemas>;

const kvLimits =
  (limits: ProtocolLimits) =>
  (m: { type: string; op?: unknown }): ReturnType<typeof checkKvOpLimits> => {
    if (m.type === 'kv') return checkKvOpLimits((m as KvRequest).op, limits);
    if (m.type !== 'watch') return undefined;
    // A watch's key or prefix is a key: bounded like every key, before the server keeps it per stream.
    const w = m as WatchRequest;
    const key = w.key ?? w.prefix ?? '';
    const size = utf8ByteLength(key);
    return size > limits.maxKeyBytes
      ? new KeyTooLargeError({ size, maxBytes: limits.maxKeyBytes })
      : undefined;
  };

/**
 * Validates a decoded client -> server message, including key and value sizes against `limits`
 * (default 4 KiB keys, 1 MiB values). Never throws; see {@link ParseResult}.
 */
export function parseClientRequest(
  input: unknown,
  limits: ProtocolLimits = DEFAULT_PROTOCOL_LIMITS,
): ParseResult<ClientRequest> {
  return ClientRequests.parse(input, kvLimits(limits));
}

/** Validates a decoded server -> client message. Never throws. */
export function parseServerResponse(input: unknown): ParseResult<ServerResponse> {
  return ServerResponses.parse(input);
}

/** Validates a decoded server -> bootstrap message. Never throws. */
export function parseBootstrapRequest(input: unknown): ParseResult<BootstrapRequest> {
  return BootstrapRequests.parse(input);
}

/** Validates a decoded bootstrap -> server message. Never throws. */
export function parseBootstrapReply(input: unknown): ParseResult<BootstrapReply> {
  return BootstrapReplies.parse(input);
}

/**
 * Validates a decoded server <-> server message; forwarded `kv` requests are checked against
 * `limits` like client requests. The `msg` of a `paxos` envelope is left for the paxos package.
 * Never throws.
 */
export function parsePeerMessage(
  input: unknown,
  limits: ProtocolLimits = DEFAULT_PROTOCOL_LIMITS,
): ParseResult<PeerMessage> {
  return PeerMessages.parse(input, kvLimits(limits));
}

/**
 * Builds an `error` message answering request `id` from any thrown value (see {@link errorToWire}:
 * non-paxkv errors become `INTERNAL` without leaking their text).
 */
export function errorMessage(error: unknown, id: number | null = null): ErrorMessage {
  return { type: 'error', ...errorToWire(error, id) };
}
