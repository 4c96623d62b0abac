/**
 * Watch messages: a client asks one replica of a partition for the partition's changes to a key or a
 * key prefix from a revision on, and the replica streams them on the same connection until the watch
 * ends. Any replica that has applied the revisions can serve a watch (no leader needed).
 *
 * - client -> server: `watch` opens a stream (its request `id` names the stream), `watch.cancel` ends it.
 * - server -> client: `watch.ok` once (the stream is open; `revision` is the replica's applied revision
 *   and `from` the first revision the stream will deliver), then `watch.events` batches in revision
 *   order (every event of one revision in one batch), and at most one `watch.end` when the server ends
 *   the stream, with the reason and the revision to resume from. A stream also ends when its connection
 *   closes; the client resumes from the revision after the last one it delivered.
 * @module
 */
import { z } from 'zod';
import { KeySchema, RequestIdSchema, ValueSchema } from './primitives.js';
import { PartitionSchema, RevisionSchema } from './revisions.js';

/** Opens a watch on one partition: `key` (one key) or `prefix` (`''`: every key). */
export const WatchRequestSchema = z
  .object({
    type: z.literal('watch'),
    id: RequestIdSchema,
    partition: PartitionSchema,
    key: KeySchema.optional(),
    prefix: z.string().optional(),
    /** First revision wanted (>= 1); omitted: changes after the replica's current revision. */
    fromRevision: RevisionSchema.min(1).optional(),
  })
  .refine((w) => (w.key === undefined) !== (w.prefix === undefined), {
    message: 'give exactly one of key and prefix',
    path: ['key'],
  });

/** Ends the watch opened by request `id`. */
export const WatchCancelSchema = z.object({ type: z.literal('watch.cancel'), id: RequestIdSchema });

/** The watch is open. */
export const WatchOkSchema = z.object({
  type: z.literal('watch.ok'),
  id: RequestIdSchema,
  partition: PartitionSchema,
  /** The serving replica's applied revision when the watch opened. */
  revision: RevisionSchema,
  /** The first revision the stream delivers. */
  from: RevisionSchema,
});

/** One change in a `watch.events` batch. */
export const WatchEventSchema = z.object({
  type: z.enum(['put', 'delete']),
  key: KeySchema,
  value: ValueSchema.optional(),
  revision: RevisionSchema,
});

/** Changes of one or more revisions, in revision order. */
export const WatchEventsSchema = z.object({
  type: z.literal('watch.events'),
  id: RequestIdSchema,
  events: z.array(WatchEventSchema),
});

/**
 * Why the server ended a watch:
 * - `compacted`: the revision asked for is older than the history this replica keeps; re-read the
 *   state and watch from `resumeRevision` (the oldest still available);
 * - `too-slow`: the watcher did not read its stream fast enough (its connection's send buffer filled);
 *   resume from `resumeRevision`;
 * - `unavailable`: this replica cannot serve the watch (it does not host the partition, it stopped, or
 *   it installed a snapshot past events it never applied); resume from `resumeRevision` on another
 *   replica;
 * - `cancelled`: the client cancelled it.
 */
export const WatchEndReasonSchema = z.enum(['compacted', 'too-slow', 'unavailable', 'cancelled']);

/** The server ended the watch. */
export const WatchEndSchema = z.object({
  type: z.literal('watch.end'),
  id: RequestIdSchema,
  reason: WatchEndReasonSchema,
  /** The revision to resume from. */
  resumeRevision: RevisionSchema,
  message: z.string(),
});

/** A `watch` request. */
export type WatchRequest = z.infer<typeof WatchRequestSchema>;
/** A `watch.cancel`. */
export type WatchCancel = z.infer<typeof WatchCancelSchema>;
/** A `watch.ok`. */
export type WatchOk = z.infer<typeof WatchOkSchema>;
/** One change of one key. */
export type WatchEvent = z.infer<typeof WatchEventSchema>;
/** A `watch.events` batch. */
export type WatchEvents = z.infer<typeof WatchEventsSchema>;
/** Why a watch ended. */
export type WatchEndReason = z.infer<typeof WatchEndReasonSchema>;
/** A `watch.end`. */
export type WatchEnd = z.infer<typeof WatchEndSchema>;
