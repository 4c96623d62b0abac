/**
 * The RESP request parser: turns the bytes a Redis client sends into commands (arrays of byte strings).
 *
 * Clients send either a multibulk array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what every
 * client library and redis-cli send) or an inline command (`GET k\r\n`, what a human types into telnet).
 * Both are parsed as Redis 7 does, with Redis's own error texts. The parser is incremental (bytes may
 * arrive split anywhere), resumable (a large argument arriving in many chunks is not re-scanned), and
 * bounded: a length header over its limit is refused before the bytes it announces are awaited, so a
 * `$1073741824` header costs nothing. A nested array in a request is refused at its first byte, as Redis
 * does (`expected '$', got '*'`), so nesting depth cannot grow. After a protocol error the connection
 * must be closed: the stream position is lost.
 * @module
 */
import type { RespLimits } from './limits.js';

/** A protocol error: reply `-ERR <message>` and close the connection. */
export class RespProtocolError extends Error {
  override readonly name = 'RespProtocolError';
}

const CR = 13;
const LF = 10;
const STAR = 42;
const DOLLAR = 36;
const EMPTY = Buffer.alloc(0);

/** Parses a decimal integer of an ASCII header (`[-]digits`); NaN if it is not one or is too long. */
function parseHeaderInt(buf: Buffer, start: number, end: number): number {
  let i = start;
  let negative = false;
  if (i < end && buf[i] === 0x2d) {
    negative = true;
    i++;
  }
  if (i === end || end - i > 15) return Number.NaN;
  let n = 0;
  for (; i < end; i++) {
    const d = (buf[i] as number) - 0x30;
    if (d < 0 || d > 9) return Number.NaN;
    n = n * 10 + d;
  }
  return negative ? -n : n;
}

/**
 * Incremental, bounded parser of RESP requests. Feed bytes with {@link RespRequestParser.push}, then
 * call {@link RespRequestParser.next} until it returns null (needs more bytes). A returned
 * {@link RespProtocolError} is final: answer it and close the connection.
 */
export class RespRequestParser {
  private buf: Buffer = EMPTY;
  private pos = 0;
  /** Chunks received but not yet merged into `buf` (merged only once enough bytes are there). */
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  /** Bytes beyond `pos` needed before parsing can progress. */
  private need = 1;
  /** Arguments still expected by the multibulk being read; 0 when between commands. */
  private argsLeft = 0;
  /** Length of the bulk being read, or -1 when its `$` header is expected. */
  private bulkLen = -1;
  private args: Buffer[] = [];
  private commandBytes = 0;
  private failed: RespProtocolError | null = null;

  constructor(private readonly limits: RespLimits) {}

  /** Bytes held (received and not yet returned as part of a command). */
  get buffered(): number {
    return this.buf.length - this.pos + this.chunkBytes;
  }

  /** True while a command has started but is not complete. */
  get partial(): boolean {
    return this.argsLeft > 0 || this.buffered > 0;
  }

  /** Appends received bytes. */
  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.failed) return;
    this.chunks.push(chunk);
    this.chunkBytes += chunk.length;
  }

  /**
   * The next complete command (its arguments as byte strings, never empty), null if more bytes are
   * needed, or the protocol error that ends the connection. Returned arguments may share memory with
   * received chunks: copy what outlives the command.
   */
  next(): Buffer[] | RespProtocolError | null {
    if (this.failed) return this.failed;
    for (;;) {
      if (this.buf.length - this.pos < this.need) {
        if (!this.merge()) return null;
      }
      const r = this.step();
      if (r === undefined) continue;
      if (r instanceof RespProtocolError) {
        this.failed = r;
        this.buf = EMPTY;
        this.chunks = [];
        this.chunkBytes = 0;
      }
      return r;
    }
  }

  /** Merges pending chunks into `buf` if together they hold `need` bytes; false otherwise. */
  private merge(): boolean {
    const have = this.buf.length - this.pos;
    if (have + this.chunkBytes < this.need || this.chunkBytes === 0) return false;
    if (have === 0 && this.chunks.length === 1) {
      this.buf = this.chunks[0] as Buffer;
    } else {
      this.chunks.unshift(this.buf.subarray(this.pos));
      this.buf = Buffer.concat(this.chunks, have + this.chunkBytes);
    }
    this.pos = 0;
    this.chunks = [];
    this.chunkBytes = 0;
    return true;
  }

  private fail(message: string): RespProtocolError {
    return new RespProtocolError(`Protocol error: ${message}`);
  }

  /** Consumes `n` bytes of the current command, checking the command size limit. */
  private consume(n: number): RespProtocolError | undefined {
    this.pos += n;
    this.commandBytes += n;
    this.need = 1;
    if (this.commandBytes > this.limits.maxCommandBytes) {
      return this.fail(`command larger than ${this.limits.maxCommandBytes} bytes`);
    }
    return undefined;
  }

  /** Index of the `\r\n` ending the line at `pos`, -1 if not there yet; checks the line length limit. */
  private lineEnd(what: string): number | RespProtocolError {
    const end = this.buf.indexOf(LF, this.pos);
    if (end < 0) {
      const have = this.buf.length - this.pos;
      if (have > this.limits.maxInlineBytes) {
        return what === 'inline'
          ? new RespProtocolError('Protocol error: too big inline request')
          : this.fail(`too big ${what} string`);
      }
      this.need = have + 1;
      return -1;
    }
    if (end - this.pos > this.limits.maxInlineBytes) {
      return what === 'inline'
        ? new RespProtocolError('Protocol error: too big inline request')
        : this.fail(`too big ${what} string`);
    }
    return end;
  }

  /**
   * One parsing step: a command, an error, null (need bytes), or undefined (progress made, go on).
   */
  private step(): Buffer[] | RespProtocolError | null | undefined {
    const buf = this.buf;
    if (this.argsLeft === 0) {
      // Between commands.
      if (buf[this.pos] !== STAR) return this.inline();
      const end = this.lineEnd('mbulk count');
      if (typeof end !== 'number') return end;
      if (end < 0) return null;
      if (buf[end - 1] !== CR) return this.fail("expected '\\r\\n' after the multibulk length");
      const n = parseHeaderInt(buf, this.pos + 1, end - 1);
      if (Number.isNaN(n) || n > this.limits.maxArgs) return this.fail('invalid multibulk length');
      this.commandBytes = 0;
      const err = this.consume(end + 1 - this.pos);
      if (err) return err;
      if (n <= 0) return undefined; // `*0` and `*-1` are empty commands: skipped, as in Redis
      this.argsLeft = n;
      this.args = [];
      this.bulkLen = -1;
      return undefined;
    }
    if (this.bulkLen < 0) {
      if (buf[this.pos] !== DOLLAR) {
        return this.fail(`expected '$', got '${String.fromCharCode(buf[this.pos] as number)}'`);
      }
      const end = this.lineEnd('bulk count');
      if (typeof end !== 'number') return end;
      if (end < 0) return null;
      if (buf[end - 1] !== CR) return this.fail("expected '\\r\\n' after the bulk length");
      const n = parseHeaderInt(buf, this.pos + 1, end - 1);
      if (Number.isNaN(n) || n < 0 || n > this.limits.maxBulkBytes) return this.fail('invalid bulk length');
      const err = this.consume(end + 1 - this.pos);
      if (err) return err;
      if (this.commandBytes + n + 2 > this.limits.maxCommandBytes) {
        return this.fail(`command larger than ${this.limits.maxCommandBytes} bytes`);
      }
      this.bulkLen = n;
      this.need = n + 2;
      return undefined;
    }
    const n = this.bulkLen;
    if (buf.length - this.pos < n + 2) {
      this.need = n + 2;
      return null;
    }
    if (buf[this.pos + n] !== CR || buf[this.pos + n + 1] !== LF) {
      return this.fail("expected '\\r\\n' after a bulk string");
    }
    this.args.push(buf.subarray(this.pos, this.pos + n));
    const err = this.consume(n + 2);
    if (err) return err;
    this.bulkLen = -1;
    this.argsLeft -= 1;
    if (this.argsLeft > 0) return undefined;
    const args = this.args;
    this.args = [];
    this.compact();
    return args;
  }

  /** Drops the consumed prefix once the buffer is fully read, so a long-lived buffer is not pinned. */
  private compact(): void {
    if (this.pos === this.buf.length) {
      this.buf = EMPTY;
      this.pos = 0;
    }
  }

  private inline(): Buffer[] | RespProtocolError | null | undefined {
    const end = this.lineEnd('inline');
    if (typeof end !== 'number') return end;
    if (end < 0) return null;
    const lineEnd = end > this.pos && this.buf[end - 1] === CR ? end - 1 : end;
    const line = this.buf.subarray(this.pos, lineEnd);
    this.commandBytes = 0;
    const err = this.consume(end + 1 - this.pos);
    if (err) return err;
    const args = splitInlineArgs(line);
    this.compact();
    if (args === null) return new RespProtocolError('Protocol error: unbalanced quotes in request');
    if (args.length > this.limits.maxArgs) return this.fail('invalid multibulk length');
    return args.length === 0 ? undefined : args;
  }
}

function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;
}

function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

const ESCAPES: Record<number, number> = { 110: 0x0a, 114: 0x0d, 116: 0x09, 98: 0x08, 97: 0x07 };

/**
 * Splits an inline command line into arguments as Redis's `sdssplitargs` does: whitespace separates,
 * `"double quotes"` allow `\n \r \t \b \a \\ \" \xHH` escapes, `'single quotes'` allow `\'`; a closing
 * quote must be followed by whitespace or the end. Returns null for unbalanced quotes.
 */
export function splitInlineArgs(line: Uint8Array): Buffer[] | null {
  const out: Buffer[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    while (i < n && isSpace(line[i])) i++;
    if (i >= n) return out;
    const cur: number[] = [];
    let inDouble = false;
    let inSingle = false;
    for (;;) {
      const c = line[i];
      if (inDouble) {
        if (c === undefined) return null;
        if (c === 0x5c && line[i + 1] === 0x78 && hexValue(line[i + 2]) >= 0 && hexValue(line[i + 3]) >= 0) {
          cur.push(hexValue(line[i + 2]) * 16 + hexValue(line[i + 3]));
          i += 3;
        } else if (c === 0x5c && i + 1 < n) {
          i++;
          const e = line[i] as number;
          cur.push(ESCAPES[e] ?? e);
        } else if (c === 0x22) {
          if (i + 1 < n && !isSpace(line[i + 1])) return null;
          inDouble = false;
          i++;
          break;
        } else cur.push(c);
      } else if (inSingle) {
        if (c === undefined) return null;
        if (c === 0x5c && line[i + 1] === 0x27) {
          i++;
          cur.push(0x27);
        } else if (c === 0x27) {
          if (i + 1 < n && !isSpace(line[i + 1])) return null;
          inSingle = false;
          i++;
          break;
        } else cur.push(c);
      } else {
        if (c === undefined || isSpace(c)) break;
        if (c === 0x22) inDouble = true;
        else if (c === 0x27) inSingle = true;
        else cur.push(c);
      }
      i++;
    }
    out.push(Buffer.from(cur));
  }
}
