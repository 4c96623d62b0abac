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

// Scratch stacks shared by every scan (a scan is synchronous and never re-entered), grown on demand.
let remainingStack = new Float64Array(64);
let isMapStack = new Uint8Array(64);

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
 * Walks one msgpack value in `bytes` without decoding it. Returns null when it is exactly one
 * well-formed value within `limits`, else a sentence saying what is wrong (for a `DecodeError`).
 * Runs in time linear in the number of msgpack items it visits and stops at the first problem, so a
 * payload that would expand beyond the budget is refused after at most `budget / 8` items. Never throws.
 */
export function scanMsgpack(bytes: Uint8Array, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): ScanProblem {
  const n = bytes.length;
  const budget = limits.maxExpansion * n + limits.allowanceBytes;
  // remaining[d] = items still expected in the open container at depth d (maps count keys and values);
  // isMap[d] tells whether that container is a map (then an even `remaining` means a key comes next).
  const maxDepth = limits.maxDepth;
  if (remainingStack.length <= maxDepth) {
    remainingStack = new Float64Array(maxDepth + 1);
    isMapStack = new Uint8Array(maxDepth + 1);
  }
  const remaining = remainingStack;
  const isMap = isMapStack;
  let depth = 0;
  let pos = 0;
  let cost = 0;
  let items = 1; // items still expected at the top level

  while (items > 0 || depth > 0) {
    // Close every finished container.
    while (depth > 0 && remaining[depth] === 0) depth--;
    if (depth === 0 && items === 0) break;
    const isKey = depth > 0 && isMap[depth] === 1 && remaining[depth]! % 2 === 0;
    if (depth > 0) remaining[depth]!--;
    else items--;
    if (pos >= n) return `the payload ends at byte ${n} in the middle of a value`;
    const b = bytes[pos++]!;
    const left = n - pos;
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
          return `byte 0xc1 at offset ${pos - 1} is not valid msgpack`;
        case 0xc4:
        case 0xc5:
        case 0xc6: {
          const w = b === 0xc4 ? 1 : b === 0xc5 ? 2 : 4;
          if (left < w) return `the payload ends inside a binary header at byte ${pos}`;
          dataLen = w === 1 ? bytes[pos]! : w === 2 ? u16(bytes, pos) : u32(bytes, pos);
          pos += w;
          cost += BINARY + dataLen;
          break;
        }
        case 0xc7:
        case 0xc8:
        case 0xc9:
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8: {
          let w = 0;
          if (b === 0xc7) w = 1;
          else if (b === 0xc8) w = 2;
          else if (b === 0xc9) w = 4;
          if (left < w + 1) return `the payload ends inside an extension header at byte ${pos}`;
          dataLen =
            w === 0 ? 1 << (b - 0xd4) : w === 1 ? bytes[pos]! : w === 2 ? u16(bytes, pos) : u32(bytes, pos);
          const type = bytes[pos + w]!;
          if (!isAllowedExtension(type)) {
            return `msgpack extension type ${type > 127 ? type - 256 : type} at offset ${pos - 1} is not part of the paxkv protocol`;
          }
          pos += w + 1;
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
        case 0xdb: {
          const w = b === 0xd9 ? 1 : b === 0xda ? 2 : 4;
          if (left < w) return `the payload ends inside a string header at byte ${pos}`;
          dataLen = w === 1 ? bytes[pos]! : w === 2 ? u16(bytes, pos) : u32(bytes, pos);
          pos += w;
          if (dataLen > 1 && !(isKey && dataLen <= CACHED_KEY_BYTES)) cost += STRING + dataLen;
          break;
        }
        case 0xdc:
        case 0xdd:
        case 0xde:
        case 0xdf: {
          const w = b === 0xdc || b === 0xde ? 2 : 4;
          if (left < w) return `the payload ends inside a collection header at byte ${pos}`;
          containerLen = w === 2 ? u16(bytes, pos) : u32(bytes, pos);
          pos += w;
          mapOpen = b >= 0xde;
          break;
        }
      }
    }
    if (dataLen > n - pos) {
      return `a value at offset ${pos} declares ${dataLen} bytes but only ${n - pos} remain`;
    }
    pos += dataLen;
    if (containerLen >= 0) {
      const slots = mapOpen ? containerLen * 2 : containerLen;
      // Every item takes at least one byte: a header that declares more than the rest of the payload
      // can hold is a lie (and would make msgpackr allocate an array of that length up front).
      if (slots > n - pos) {
        return `a ${mapOpen ? 'map' : 'array'} at offset ${pos} declares ${containerLen} ${mapOpen ? 'entries' : 'elements'} but only ${n - pos} bytes remain`;
      }
      cost += mapOpen ? MAP : ARRAY;
      if (slots > 0) {
        if (depth >= maxDepth) return `the value nests deeper than ${maxDepth} levels (limit maxDepth)`;
        depth++;
        remaining[depth] = slots;
        isMap[depth] = mapOpen ? 1 : 0;
      }
    }
    if (cost > budget) {
      return `its decoded form would take more than ${limits.maxExpansion} times its ${n} bytes (limit maxExpansion; refused at offset ${pos})`;
    }
  }
  if (pos !== n) return `${n - pos} trailing bytes after the value`;
  return null;
}
