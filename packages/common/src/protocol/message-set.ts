/**
 * Message sets: the messages one channel accepts, each a zod object with a literal `type` tag,
 * and a parser that never throws. Channels are extended by spreading an existing set's schemas into
 * a new one: `defineMessageSet('peer', { ...PeerMessageSchemas, 'peer.bye': ByeSchema })`.
 * @module
 */
import type { z } from 'zod';
import { BadRequestError, type PaxkvError, UnknownTypeError } from '../errors.js';

/** A message schema: parses to an object with a string `type` tag. */
export type MessageSchema = z.ZodType<{ type: string }>;

/** Map of `type` tag -> schema of the message with that tag. */
export type MessageSchemas = Readonly<Record<string, MessageSchema>>;

/** The union of the messages a schema map describes. */
export type MessageOf<S extends MessageSchemas> = z.infer<S[keyof S]>;

/**
 * Outcome of a parse: the typed message, or a typed error plus the request id found in the input
 * (if any) so that the error can be answered to the right request.
 */
export type ParseResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: PaxkvError; readonly id: number | null };

/** A post-validation check (for example size limits); returns an error to reject the message. */
export type MessageCheck<T> = (message: T) => PaxkvError | undefined;

/** The messages of one channel. */
export interface MessageSet<T extends { type: string }> {
  /** Name used in error messages ("client request"). */
  readonly name: string;
  /** The accepted `type` tags. */
  readonly types: readonly string[];
  /** Schema per tag. */
  readonly schemas: MessageSchemas;
  /**
   * Validates an unknown decoded value. Never throws. Unknown tags give an
   * {@link UnknownTypeError}, malformed fields a {@link BadRequestError} naming the field, and
   * `check` (if given) may reject a well-formed message with its own error.
   */
  parse(input: unknown, check?: MessageCheck<T>): ParseResult<T>;
  /** Returns true if `input` is a valid message of this set. */
  is(input: unknown): input is T;
}

/** Reads a request id from an unvalidated value, for error replies. */
export function requestIdOf(input: unknown): number | null {
  if (typeof input !== 'object' || input === null) return null;
  const id = (input as { id?: unknown }).id;
  return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : null;
}

/** Converts a zod error into a {@link BadRequestError} naming the first offending field. */
export function zodErrorToBadRequest(error: z.ZodError): BadRequestError {
  const issue = error.issues[0];
  if (!issue) return new BadRequestError({ problem: 'invalid message' });
  const field = issue.path.map(String).join('.');
  return new BadRequestError({ field: field || undefined, problem: issue.message });
}

/**
 * Defines a message set from a map of `type` tag -> schema. The map's keys must equal the literal
 * `type` of each schema (checked on first use of each tag: a mismatch is reported as a bad request).
 */
export function defineMessageSet<S extends MessageSchemas>(
  name: string,
  schemas: S,
): MessageSet<MessageOf<S>> {
  type T = MessageOf<S>;
  const table = new Map<string, MessageSchema>(Object.entries(schemas));
  const types = Object.freeze([...table.keys()]);
  const parse = (input: unknown, check?: MessageCheck<T>): ParseResult<T> => {
    const id = requestIdOf(input);
    if (typeof input !== 'object' || input === null || Array.isArray(input) || input instanceof Uint8Array) {
      return {
        ok: false,
        id,
        error: new BadRequestError({ problem: `a ${name} must be a map with a 'type' field` }),
      };
    }
    const type = (input as { type?: unknown }).type;
    if (typeof type !== 'string') {
      return {
        ok: false,
        id,
        error: new BadRequestError({ field: 'type', problem: 'missing or not a string' }),
      };
    }
    const schema = table.get(type);
    if (!schema) {
      return { ok: false, id, error: new UnknownTypeError({ type: type.slice(0, 64), expected: types }) };
    }
    const r = schema.safeParse(input);
    if (!r.success) return { ok: false, id, error: zodErrorToBadRequest(r.error) };
    const value = r.data as T;
    const problem = check?.(value);
    if (problem) return { ok: false, id, error: problem };
    return { ok: true, value };
  };
  return Object.freeze({
    name,
    types,
    schemas,
    parse,
    is: (input: unknown): input is T => parse(input).ok,
  });
}
