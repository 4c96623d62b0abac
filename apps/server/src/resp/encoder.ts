/**
 * RESP2 and RESP3 replies: a small tagged union of reply values and their encoding. A connection speaks
 * RESP2 until `HELLO 3`; RESP3-only types are downgraded for RESP2 exactly as Redis does (a map becomes a
 * flat array of keys and values, a set an array, a null `$-1` or `*-1`, a boolean an integer, a double a
 * bulk string).
 * @module
 */

/** The protocol version a connection speaks. */
export type RespVersion = 2 | 3;

/** A reply value. */
export type RespValue =
  | { readonly t: 'simple'; readonly s: string }
  | { readonly t: 'error'; readonly s: string }
  | { readonly t: 'int'; readonly n: number | bigint }
  | { readonly t: 'bulk'; readonly b: Uint8Array | string }
  /** A null: `$-1` in RESP2 (`*-1` when `array` is set), `_` in RESP3. */
  | { readonly t: 'null'; readonly array?: boolean }
  | { readonly t: 'array'; readonly items: readonly RespValue[] }
  | { readonly t: 'set'; readonly items: readonly RespValue[] }
  | { readonly t: 'map'; readonly entries: readonly (readonly [RespValue, RespValue])[] }
  | { readonly t: 'bool'; readonly v: boolean }
  | { readonly t: 'double'; readonly v: number }
  /** An already encoded reply (the same bytes in both versions). */
  | { readonly t: 'raw'; readonly bytes: Buffer };

/** Reply constructors. */
export const R = {
  simple: (s: string): RespValue => ({ t: 'simple', s }),
  /** An error reply; `s` starts with its code word (`ERR ...`, `WRONGTYPE ...`). */
  error: (s: string): RespValue => ({ t: 'error', s }),
  int: (n: number | bigint): RespValue => ({ t: 'int', n }),
  bulk: (b: Uint8Array | string): RespValue => ({ t: 'bulk', b }),
  /** A bulk string, or a null when `b` is null. */
  bulkOrNull: (b: Uint8Array | string | null): RespValue => (b === null ? NULL : { t: 'bulk', b }),
  array: (items: readonly RespValue[]): RespValue => ({ t: 'array', items }),
  set: (items: readonly RespValue[]): RespValue => ({ t: 'set', items }),
  map: (entries: readonly (readonly [RespValue, RespValue])[]): RespValue => ({ t: 'map', entries }),
  bool: (v: boolean): RespValue => ({ t: 'bool', v }),
  double: (v: number): RespValue => ({ t: 'double', v }),
} as const;

/** `+OK`. */
export const OK: RespValue = { t: 'raw', bytes: Buffer.from('+OK\r\n') };
/** A null bulk string (`$-1` / `_`). */
export const NULL: RespValue = { t: 'null' };
/** A null array (`*-1` / `_`). */
export const NULL_ARRAY: RespValue = { t: 'null', array: true };

const CRLF = Buffer.from('\r\n');
const NULL2 = Buffer.from('$-1\r\n');
const NULL_ARRAY2 = Buffer.from('*-1\r\n');
const NULL3 = Buffer.from('_\r\n');

/** A simple string or error may not contain CR or LF: they would end the line early. */
function oneLine(s: string): string {
  return /[\r\n]/.test(s) ? s.replace(/[\r\n]+/g, ' ') : s;
}

function formatDouble(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Number.POSITIVE_INFINITY) return 'inf';
  if (v === Number.NEGATIVE_INFINITY) return '-inf';
  return String(v);
}

function encodeInto(v: RespValue, proto: RespVersion, out: Buffer[]): void {
  switch (v.t) {
    case 'raw':
      out.push(v.bytes);
      return;
    case 'simple':
      out.push(Buffer.from(`+${oneLine(v.s)}\r\n`));
      return;
    case 'error':
      out.push(Buffer.from(`-${oneLine(v.s)}\r\n`));
      return;
    case 'int':
      out.push(Buffer.from(`:${v.n}\r\n`));
      return;
    case 'bulk': {
      const body = typeof v.b === 'string' ? Buffer.from(v.b) : v.b;
      out.push(Buffer.from(`$${body.length}\r\n`), body as Buffer, CRLF);
      return;
    }
    case 'null':
      out.push(proto === 3 ? NULL3 : v.array ? NULL_ARRAY2 : NULL2);
      return;
    case 'array':
    case 'set':
      out.push(Buffer.from(`${proto === 3 && v.t === 'set' ? '~' : '*'}${v.items.length}\r\n`));
      for (const item of v.items) encodeInto(item, proto, out);
      return;
    case 'map':
      out.push(Buffer.from(proto === 3 ? `%${v.entries.length}\r\n` : `*${v.entries.length * 2}\r\n`));
      for (const [k, x] of v.entries) {
        encodeInto(k, proto, out);
        encodeInto(x, proto, out);
      }
      return;
    case 'bool':
      out.push(Buffer.from(proto === 3 ? (v.v ? '#t\r\n' : '#f\r\n') : v.v ? ':1\r\n' : ':0\r\n'));
      return;
    case 'double': {
      const s = formatDouble(v.v);
      out.push(Buffer.from(proto === 3 ? `,${s}\r\n` : `$${s.length}\r\n${s}\r\n`));
      return;
    }
  }
}

/** Encodes one reply as the buffers to write, in order (bulk bodies are not copied). */
export function encodeReply(v: RespValue, proto: RespVersion): Buffer[] {
  const out: Buffer[] = [];
  encodeInto(v, proto, out);
  return out;
}
