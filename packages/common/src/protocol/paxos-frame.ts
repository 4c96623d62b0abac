/**
 * The hot path of server-to-server traffic: `paxos` and `paxos.batch` frames checked by hand instead of
 * by their zod schemas. Every frame a server receives from a peer in steady state is one of these, and
 * zod copies every object it parses (the batch array and each `{ partition, msg }`), which cost about
 * 2.5 % of a loaded server's CPU plus the garbage. The rules are exactly those of
 * {@link PaxosEnvelopeSchema} and {@link PaxosBatchSchema} (a property test holds the two to the same
 * verdict); a frame they refuse is handed to the zod parser, so the error reported is the usual one.
 * @module
 */
import type { ParseResult } from './message-set.js';
import {
  MAX_PAXOS_BATCH,
  type PaxosBatch,
  type PaxosEnvelope,
  type PeerMessage,
  parsePeerMessage,
} from './messages.js';
import { isNat, isPlainObject } from './shape.js';

function isBeat(b: unknown): boolean {
  if (!Array.isArray(b)) return false;
  if (b.length === 2) return isNat(b[0]) && isNat(b[1]);
  if (b.length !== 7) return false;
  for (let i = 0; i < 7; i++) {
    if (i === 4) {
      if (b[4] !== 0 && b[4] !== 1) return false;
    } else if (!isNat(b[i])) return false;
  }
  return true;
}

/** True when `input` is a `paxos` or `paxos.batch` frame {@link parsePeerMessage} accepts. */
export function isPaxosFrame(input: unknown): input is PaxosEnvelope | PaxosBatch {
  if (!isPlainObject(input)) return false;
  const from = input.from;
  if (typeof from !== 'number' || !Number.isSafeInteger(from) || from <= 0) return false;
  // `msg` is opaque here but must be present, as in the schema (`z.unknown()` is not optional).
  if (input.type === 'paxos') return isNat(input.partition) && 'msg' in input;
  if (input.type !== 'paxos.batch') return false;
  const msgs = input.msgs;
  if (!Array.isArray(msgs) || msgs.length > MAX_PAXOS_BATCH) return false;
  for (const m of msgs) if (!isPlainObject(m) || !isNat(m.partition) || !('msg' in m)) return false;
  const beats = input.beats;
  if (beats === undefined) return msgs.length > 0;
  if (!Array.isArray(beats) || beats.length > MAX_PAXOS_BATCH) return false;
  for (const b of beats) if (!isBeat(b)) return false;
  return msgs.length + beats.length > 0;
}

/**
 * Parses a frame from a peer that claims to be `paxos` or `paxos.batch` (any other frame, or one of
 * these the schemas refuse, goes through {@link parsePeerMessage}, whose verdict and error it returns).
 * The value returned for an accepted frame is the input itself (no copy); extra fields are not read.
 */
export function parsePaxosFrame(input: unknown): ParseResult<PeerMessage> {
  if (isPaxosFrame(input)) return { ok: true, value: input };
  return parsePeerMessage(input);
}
