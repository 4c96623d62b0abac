/**
 * Bounded decoding: a pre-scan of msgpack bytes that refuses, before anything is allocated, a payload
 * whose decoded form would cost more than a small multiple of its size, nest deeper than a limit, declare
 * more elements or bytes than it carries, or use a msgpack extension the protocol never sends.
 *
 * Why a pre-scan: msgpackr has no collection or nesting limits, and one byte of msgpack can become
 * ~64 bytes of JavaScript heap (an empty map) or ~190 bytes (an empty binary, copied into its own
 * `Buffer`): a 16 MiB frame holding an array of 16.7 M empty maps decodes into ~1.7 GB and blocks the
 * event loop for seconds. The scan walks the bytes once, without recursion and without allocating,
 * adds up an estimate of the heap the decoded value will take, and stops as soon as that estimate
 * passes `maxExpansion` times the payload size (plus a small allowance), so a hostile frame is refused
 * after a bounded amount of work.
 * @module
 */

/** Limits of {@link scanMsgpack}. */
export interface DecodeLimits {
  /**
   * Deepest nesting of arrays and maps (the top-level value is depth 0; `[[1]]` has depth 2).
   * Default {@link DEFAULT_DECODE_LIMITS}`.maxDepth` (32); paxkv messages nest at most about 8 deep.
   */
  readonly maxDepth: number;
  /**
   * Largest estimated decoded size, as a multiple of the payload size (plus `allowanceBytes`).
   * Default 16. The estimate follows measured msgpackr costs on Node 20 (see {@link estimatedCost}):
   * legitimate paxkv messages come out at 4-10 times their size (a batch of 1024 small puts: 6.7,
   * a batch of binary puts: 9.2, a lookup table: 6), an array of empty maps at 72, of empty binaries at 100.
   */
  readonly maxExpansion: number;
  /** Estimated decoded bytes every payload may use whatever its size. Default 65536. */
  readonly allowanceBytes: number;
  /**
   * Most msgpack values (map keys, map values, array elements, the top-level value) in one payload.
   * Decoding time grows with the number of values, not with bytes: a 16 MiB array of small integers
   * passes `maxExpansion` (8 bytes of heap per byte) but takes seconds to decode. Default: no limit
   * (a server sets one for connections it does not trust, see `TransportServer`).
   */
  readonly maxItems?: number;
}

/** The default {@link DecodeLimits}: depth 32, 16 times the payload size plus 64 KiB. */
export const DEFAULT_DECODE_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxDepth: 32,
  maxExpansion: 16,
  allowanceBytes: 64 * 1024,
});

/**
 * The estimated heap cost of decoded values, in bytes, as measured with msgpackr 2 on Node 20 (64-bit,
 * no pointer compression). Every value also costs its 8-byte slot in its parent.
 */
export const estimatedCost = Object.freeze({
  /** The slot a value takes in its parent array or object (or the top-level reference). */
  slot: 8,
  /** A map decoded to a plain object (measured ~64 B for `{}`). */
  map: 56,
  /** Each property of an object (map keys of up to `cachedKeyBytes` are interned by msgpackr). */
  mapEntry: 16,
  /** An array (measured ~39 B for `[]`); its elements add their own slots. */
  array: 32,
  /** A string longer than one byte, plus its length (msgpackr shares empty and one-byte strings). */
  string: 24,
  /** A binary value copied into its own `Buffer` (measured ~190 B for an empty one), plus its length. */
  binary: 192,
  /** A number that does not fit a small integer (floats, integers beyond 31 bits): a heap number. */
  heapNumber: 16,
  /** An extension value (`undefined`, a timestamp), plus its length. */
  extension: 64,
  /** Map keys up to this many bytes cost nothing beyond their property (msgpackr caches them). */
  cachedKeyBytes: 16,
});

const SLOT = estimatedCost.slot;
const MAP = estimatedCost.map;
const MAP_ENTRY = estimatedCost.mapEntry;
const ARRAY = estimatedCost.array;
const STRING = estimatedCost.string;
const BINARY = estimatedCost.binary;
const HEAP_NUMBER = estimatedCost.heapNumber;
const EXTENSION = estimatedCost.extension;
const CACHED_KEY_BYTES = estimatedCost.cachedKeyBytes;

/** msgpack extension types the paxkv codec may meet: 0 (`undefined`, as msgpackr writes it), -1 (timestamp). */
const isAllowedExtension = (type: number): boolean => type === 0 || type === 0xff;

function u16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** Outcome of {@link scanMsgpack}: null when the payload is within the limits, else why not. */
export type ScanProblem = string | null;

function checkLimits(limits: DecodeLimits): void {
  if (!Number.isSafeInteger(limits.maxDepth) || limits.maxDepth < 1 || limits.maxDepth > 1024)
    throw new RangeError(`maxDepth must be an integer in 1..1024, got ${limits.maxDepth}`);
  if (!(limits.maxExpansion >= 1) || !Number.isFinite(limits.maxExpansion))
    throw new RangeError(`maxExpansion must be a finite number >= 1, got ${limits.maxExpansion}`);
  if (!Number.isSafeInteger(limits.allowanceBytes) || limits.allowanceBytes < 0)
    throw new RangeError(`allowanceBytes must be a non-negative integer, got ${limits.allowanceBytes}`);
  const items = limits.maxItems;
  if (items !== undefined && (!Number.isSafeInteger(items) || items < 1))
    throw new RangeError(`maxItems must be a positive integer, got ${items}`);
}

/**
 * Resolves partial limits over {@link DEFAULT_DECODE_LIMITS}.
 * @throws RangeError naming the limit that is out of range.
 */
export function resolveDecodeLimits(partial: Partial<DecodeLimits> = {}): DecodeLimits {
  const limits = { ...DEFAULT_DECODE_LIMITS, ...partial };
  checkLimits(limits);
  return limits;
}

/**
 * Bytes of an item's header, the first byte included (string, binary and extension headers carry their
 * length; extensions also their type). The payload of strings, binaries, numbers and extensions is
 * skipped separately.
 */
function headerBytes(b: number): number {
  if (b <= 0xbf || b >= 0xe0) return 1;
  switch (b) {
    case 0xc4:
    case 0xd9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
      return 2;
    case 0xc5:
    case 0xda:
    case 0xdc:
    case 0xde:
    case 0xc7:
      return 3;
    case 0xc8:
      return 4;
    case 0xc6:
    case 0xdb:
    case 0xdd:
    case 0xdf:
      return 5;
    case 0xc9:
      return 6;
    default:
      return 1;
  }
}

/**
 * An incremental {@link scanMsgpack}: walks one msgpack value of a known length as its bytes arrive, in
 * any number of chunks, so a receiver refuses a hostile frame at the first chunk that breaks the limits
 * instead of buffering the whole frame and scanning it in one long synchronous pass.
 *
 * The budget is checked on every prefix: after the items that start in the first `k` bytes (strings,
 * binaries and extensions counted with their whole declared length), their estimated decoded size must
 * stay within `maxExpansion * k + allowanceBytes`. A legitimate message spreads its cost evenly, so the
 * prefix rule refuses nothing the whole-payload rule accepts in practice, while an array of empty maps is
 * refused within its first few kilobytes. With `maxItems`, the scan also stops at the first item past
 * the limit (decoding time grows with the number of items, not bytes).
 *
 * ```ts
 * const scan = new MsgpackScanner(limits);
 * scan.begin(frameLength);
 * for (const chunk of chunks) { const problem = scan.feed(chunk); if (problem) refuse(problem); }
 * // scan.complete is true once the value ended exactly at frameLength
 * ```
 */
export class MsgpackScanner {
  private readonly limits: DecodeLimits;
  private readonly remaining: Float64Array;
  private readonly isMap: Uint8Array;
  private readonly carry = new Uint8Array(8);
  private carryLen = 0;
  private n = 0;
  private depth = 0;
  private top = 0;
  private pos = 0;
  private cost = 0;
  private items = 0;
  private skip = 0;
  private trailing = 0;
  private problem: ScanProblem = null;

  /**
   * @param limits the limits to enforce (default {@link DEFAULT_DECODE_LIMITS}).
   * @throws RangeError if a limit is out of range.
   */
  constructor(limits: DecodeLimits = DEFAULT_DECODE_LIMITS) {
    checkLimits(limits);
    this.limits = limits;
    this.remaining = new Float64Array(limits.maxDepth + 1);
    this.isMap = new Uint8Array(limits.maxDepth + 1);
  }

  /** Starts the scan of a new value of exactly `length` bytes (forgetting any earlier one). */
  begin(length: number): void {
    this.n = length;
    this.depth = 0;
    this.top = 1;
    this.pos = 0;
    this.cost = 0;
    this.items = 0;
    this.skip = 0;
    this.trailing = 0;
    this.carryLen = 0;
    this.problem = length === 0 ? `the payload ends at byte 0 in the middle of a value` : null;
  }

  /** Bytes of the value consumed so far (declared payloads of strings and binaries counted when skipped). */
  get scannedBytes(): number {
    return this.pos - this.skip;
  }

  /** True once the value is complete and well-formed, ending exactly at the length given to `begin`. */
  get complete(): boolean {
    return (
      this.problem === null &&
      this.trailing === 0 &&
      this.top === 0 &&
      this.depth === 0 &&
      this.skip === 0 &&
      this.pos === this.n
    );
  }

  /** The first problem found, if any (then every later `feed` returns it again). */
  get failure(): ScanProblem {
    return this.problem;
  }

  /**
   * Scans the next bytes of the value (`bytes[from..to)`). Returns null while the value is fine so far,
   * else the problem (a sentence for a `DecodeError`). Bytes after the end of the value are reported by
   * {@link MsgpackScanner.finish} (trailing bytes). Never throws; work is linear in the bytes given.
   */
  feed(bytes: Uint8Array, from = 0, to = bytes.length): ScanProblem {
    if (this.problem !== null) return this.problem;
    const problem = this.run(bytes, from, to);
    if (problem !== null) this.problem = problem;
    return problem;
  }

  /** Call once all `length` bytes were fed: a problem if they are not exactly one complete value. */
  finish(): ScanProblem {
    if (this.problem !== null) return this.problem;
    if (this.trailing > 0) this.problem = `${this.trailing} trailing bytes after the value`;
    else if (!this.complete)
      this.problem = `the payload ends at byte ${this.scannedBytes} in the middle of a value`;
    return this.problem;
  }

  private run(bytes: Uint8Array, from: number, to: number): ScanProblem {
    const limits = this.limits;
    const n = this.n;
    const maxDepth = limits.maxDepth;
    const maxItems = limits.maxItems ?? Number.POSITIVE_INFINITY;
    const expansion = limits.maxExpansion;
    const allowance = limits.allowanceBytes;
    const remaining = this.remaining;
    const isMap = this.isMap;
    const carry = this.carry;
    let depth = this.depth;
    let top = this.top;
    let pos = this.pos;
    let cost = this.cost;
    let items = this.items;
    let skip = this.skip;
    let i = from;
    let problem: ScanProblem = null;
    scan: for (;;) {
      if (skip > 0) {
        const k = Math.min(skip, to - i);
        i += k;
        skip -= k;
        if (skip > 0) break;
      }
      // Close every finished container.
      while (depth > 0 && remaining[depth] === 0) depth--;
      if (depth === 0 && top === 0) {
        // Bytes after the value: reported by `finish` once they all arrived (a stream cut before that
        // is a truncated frame, not a bad payload); they cost nothing to skip.
        if (pos < n) {
          this.trailing = n - pos;
          skip = n - pos;
          pos = n;
          continue;
        }
        break;
      }
      if (i >= to) break;
      // The item's header, possibly split across chunks (kept in `carry` until complete).
      const first = this.carryLen > 0 ? carry[0]! : bytes[i]!;
      const hlen = headerBytes(first);
      if (n - pos < hlen) {
        problem = `the payload ends inside the header of the value at offset ${pos}`;
        break;
      }
      let h: Uint8Array;
      let at: number;
      if (this.carryLen > 0 || to - i < hlen) {
        const want = hlen - this.carryLen;
        const k = Math.min(want, to - i);
        carry.set(bytes.subarray(i, i + k), this.carryLen);
        this.carryLen += k;
        i += k;
        if (this.carryLen < hlen) break;
        this.carryLen = 0;
        h = carry;
        at = 0;
      } else {
        h = bytes;
        at = i;
        i += hlen;
      }
      const isKey = depth > 0 && isMap[depth] === 1 && remaining[depth]! % 2 === 0;
      if (depth > 0) remaining[depth]!--;
      else top--;
      if (++items > maxItems) {
        problem = `it holds more than ${maxItems} values (limit maxItems; refused at offset ${pos})`;
        break;
      }
      const b = h[at]!;
      pos += hlen;
      cost += isKey ? MAP_ENTRY : SLOT;
      let containerLen = -1; // >= 0 when this item opens an array (items) or a map (entries)
      let mapOpen = false;
      let dataLen = 0; // bytes of payload to skip (strings, binaries, numbers, extensions)
      if (b <= 0x7f || b >= 0xe0) {
        // fixint
      } else if (b <= 0x8f) {
        containerLen = b & 0x0f;
        mapOpen = true;
      } else if (b <= 0x9f) {
        containerLen = b & 0x0f;
      } else if (b <= 0xbf) {
        dataLen = b & 0x1f;
        if (dataLen > 1 && !(isKey && dataLen <= CACHED_KEY_BYTES)) cost += STRING + dataLen;
      } else {
        switch (b) {
          case 0xc0:
          case 0xc2:
          case 0xc3:
            break;
          case 0xc1:
            problem = `byte 0xc1 at offset ${pos - 1} is not valid msgpack`;
            break scan;
          case 0xc4:
          case 0xc5:
          case 0xc6:
            dataLen = b === 0xc4 ? h[at + 1]! : b === 0xc5 ? u16(h, at + 1) : u32(h, at + 1);
            cost += BINARY + dataLen;
            break;
          case 0xc7:
          case 0xc8:
          case 0xc9:
          case 0xd4:
          case 0xd5:
          case 0xd6:
          case 0xd7:
          case 0xd8: {
            dataLen =
              b === 0xc7
                ? h[at + 1]!
                : b === 0xc8
                  ? u16(h, at + 1)
                  : b === 0xc9
                    ? u32(h, at + 1)
                    : 1 << (b - 0xd4);
            const type = h[at + hlen - 1]!;
            if (!isAllowedExtension(type)) {
              problem = `msgpack extension type ${type > 127 ? type - 256 : type} at offset ${pos - hlen} is not part of the paxkv protocol`;
              break scan;
            }
            cost += EXTENSION + dataLen;
            break;
          }
          case 0xca:
          case 0xcb:
            dataLen = b === 0xca ? 4 : 8;
            cost += HEAP_NUMBER;
            break;
          case 0xcc:
          case 0xd0:
            dataLen = 1;
            break;
          case 0xcd:
          case 0xd1:
            dataLen = 2;
            break;
          case 0xce:
          case 0xd2:
            dataLen = 4;
            cost += HEAP_NUMBER;
            break;
          case 0xcf:
          case 0xd3:
            dataLen = 8;
            cost += HEAP_NUMBER;
            break;
          case 0xd9:
          case 0xda:
          case 0xdb:
            dataLen = b === 0xd9 ? h[at + 1]! : b === 0xda ? u16(h, at + 1) : u32(h, at + 1);
            if (dataLen > 1 && !(isKey && dataLen <= CACHED_KEY_BYTES)) cost += STRING + dataLen;
            break;
          case 0xdc:
          case 0xdd:
          case 0xde:
          case 0xdf:
            containerLen = b === 0xdc || b === 0xde ? u16(h, at + 1) : u32(h, at + 1);
            mapOpen = b >= 0xde;
            break;
        }
      }
      if (dataLen > n - pos) {
        problem = `a value at offset ${pos} declares ${dataLen} bytes but only ${n - pos} remain`;
        break;
      }
      pos += dataLen;
      skip = dataLen;
      if (containerLen >= 0) {
        const slots = mapOpen ? containerLen * 2 : containerLen;
        // Every item takes at least one byte: a header that declares more than the rest of the payload
        // can hold is a lie (and would make msgpackr allocate an array of that length up front).
        if (slots > n - pos) {
          problem = `a ${mapOpen ? 'map' : 'array'} at offset ${pos} declares ${containerLen} ${mapOpen ? 'entries' : 'elements'} but only ${n - pos} bytes remain`;
          break;
        }
        cost += mapOpen ? MAP : ARRAY;
        if (slots > 0) {
          if (depth >= maxDepth) {
            problem = `the value nests deeper than ${maxDepth} levels (limit maxDepth)`;
            break;
          }
          depth++;
          remaining[depth] = slots;
          isMap[depth] = mapOpen ? 1 : 0;
        }
      }
      if (cost > expansion * pos + allowance) {
        problem = `its decoded form would take more than ${expansion} times its ${n} bytes (limit maxExpansion; refused at offset ${pos})`;
        break;
      }
    }
    this.depth = depth;
    this.top = top;
    this.pos = pos;
    this.cost = cost;
    this.items = items;
    this.skip = skip;
    return problem;
  }
}

let shared: { scanner: MsgpackScanner; limits: DecodeLimits } | undefined;

/**
 * Walks one msgpack value in `bytes` without decoding it. Returns null when it is exactly one
 * well-formed value within `limits`, else a sentence saying what is wrong (for a `DecodeError`).
 * Runs in time linear in the number of msgpack items it visits and stops at the first problem (see
 * {@link MsgpackScanner}: the budget holds for every prefix, so an array of empty maps is refused within
 * its first kilobytes). Never throws.
 */
export function scanMsgpack(bytes: Uint8Array, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): ScanProblem {
  // One scanner per limits object, reused (a scan is synchronous and never re-entered).
  if (shared?.limits !== limits) shared = { scanner: new MsgpackScanner(limits), limits };
  const scanner = shared.scanner;
  scanner.begin(bytes.length);
  const problem = scanner.feed(bytes);
  return problem ?? scanner.finish();
}
