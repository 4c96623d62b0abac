/**
 * Where a one-shot `put` takes its value from: the argument, standard input (`put k -`) or a file
 * (`put k --file F`). Values from stdin or a file are taken byte for byte (a trailing newline is kept):
 * valid UTF-8 becomes a string value, anything else a binary value.
 */
import { readFile } from 'node:fs/promises';
import type { CliValue } from './execute.js';

/** Reading stops past this many bytes: the server's value limit is 1 MiB, so more can only be refused. */
export const MAX_VALUE_INPUT_BYTES = 16 * 1024 * 1024;

/** A value source that cannot be used; the message says what to do. */
export class ValueInputError extends Error {
  override readonly name = 'ValueInputError';
}

/** Bytes as a value: a string when they are valid UTF-8, else the bytes themselves. */
export function bytesToValue(bytes: Uint8Array): CliValue {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return bytes;
  }
}

/** Reads a stream to its end, refusing more than {@link MAX_VALUE_INPUT_BYTES}. */
export async function readAll(stream: NodeJS.ReadableStream, what: string): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    total += b.length;
    if (total > MAX_VALUE_INPUT_BYTES) {
      throw new ValueInputError(
        `${what} is larger than ${MAX_VALUE_INPUT_BYTES} bytes: values are at most 1 MiB`,
      );
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/**
 * The value of `put`: `arg` itself, or stdin when `arg` is `-`, or the contents of `file`.
 * @throws {ValueInputError} when both or neither are given, or the file cannot be read.
 */
export async function resolveValue(
  arg: string | undefined,
  file: string | undefined,
  stdin: NodeJS.ReadableStream,
): Promise<CliValue> {
  if (file !== undefined) {
    if (arg !== undefined)
      throw new ValueInputError('give the value either as an argument or with --file, not both');
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (e) {
      throw new ValueInputError(`cannot read --file ${file}: ${(e as Error).message}`);
    }
    if (bytes.length > MAX_VALUE_INPUT_BYTES)
      throw new ValueInputError(`--file ${file} is larger than ${MAX_VALUE_INPUT_BYTES} bytes`);
    return bytesToValue(bytes);
  }
  if (arg === undefined)
    throw new ValueInputError(
      'missing value: paxkv put <key> <value>, put <key> - (stdin) or put <key> --file F',
    );
  if (arg === '-') return bytesToValue(await readAll(stdin, 'standard input'));
  return arg;
}
