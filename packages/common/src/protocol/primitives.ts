/**
 * Zod schemas of the protocol's building blocks: node ids, addresses, request ids, keys, values
 * and sessions.
 * @module
 */
import { z } from 'zod';
import { parseAddress } from '../address.js';
import { InvalidAddressError } from '../errors.js';

/** A node id: a positive safe integer. */
export const NodeIdSchema = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/** A `host:port` address (IPv6 in brackets), port 1..65535. */
export const AddressSchema = z.string().superRefine((s, ctx) => {
  const parsed = parseAddress(s);
  if (parsed instanceof InvalidAddressError) ctx.addIssue({ code: 'custom', message: parsed.message });
});

/** A request id chosen by the sender, echoed in the reply: a non-negative safe integer. */
export const RequestIdSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/**
 * A key: a non-empty string. Its UTF-8 size limit (default 4 KiB) is checked by the parse
 * functions against {@link ProtocolLimits}, so that the limit stays configurable.
 */
export const KeySchema = z.string().min(1, 'key must not be empty');

/** A value: a UTF-8 string or bytes. */
export type Value = string | Uint8Array;

/** A value: a UTF-8 string or bytes. Its size limit (default 1 MiB) is checked like the key's. */
export const ValueSchema = z.union([
  z.string(),
  z.custom<Uint8Array>((v) => v instanceof Uint8Array, { message: 'expected a string or bytes' }),
]);

/** Longest session client id, in characters. */
export const MAX_SESSION_CLIENT_LENGTH = 64;

/**
 * A client session for exactly-once writes: `client` names the session (1..64 chars), `seq` numbers
 * its requests (positive, increasing). A retried write with the same pair is applied once.
 */
export const SessionSchema = z.object({
  client: z.string().min(1).max(MAX_SESSION_CLIENT_LENGTH),
  seq: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
});

/** Where the leader of a group can be reached. */
export const LeaderHintSchema = z.object({ node: NodeIdSchema, address: AddressSchema });

/** Request id of a message (see {@link RequestIdSchema}). */
export type RequestId = z.infer<typeof RequestIdSchema>;
/** A key (see {@link KeySchema}). */
export type Key = z.infer<typeof KeySchema>;
/** A session (see {@link SessionSchema}). */
export type Session = z.infer<typeof SessionSchema>;
