/**
 * Format detection and the one entry point to read any supported history.
 * @module
 */
import { readEdn } from './edn.js';
import { HistoryParseError } from './errors.js';
import type { History } from './history.js';
import { readJsonl, readJsonlFile } from './jsonl.js';
import { readPorcupineEtcd, readPorcupineKv } from './porcupine.js';

/** Supported input formats. */
export const FORMATS = ['jsonl', 'edn', 'porcupine-etcd', 'porcupine-kv'] as const;
/** One of {@link FORMATS}. */
export type Format = (typeof FORMATS)[number];

/**
 * Picks the format from the content: a Jepsen log line → `porcupine-etcd`; a line in Porcupine's
 * exact kv grammar → `porcupine-kv`; a JSON object → `jsonl`; anything starting with `{:`, `[`, `(`
 * or `;` → `edn`. Empty text reads as an empty `jsonl` history.
 * @throws HistoryParseError when nothing matches.
 */
export function detectFormat(text: string): Format {
  const first = text.split('\n').find((l) => l.trim() !== '');
  if (first === undefined) return 'jsonl';
  const t = first.trim();
  if (t.startsWith('INFO ') && t.includes('jepsen.util')) return 'porcupine-etcd';
  if (/^\{:process \d+, :type :\w+, :f :\w+, :key "/.test(t)) return 'porcupine-kv';
  if (t.startsWith('{"') || t.startsWith('{ "')) return 'jsonl';
  if (t.startsWith('{') || t.startsWith('[') || t.startsWith('(') || t.startsWith(';')) return 'edn';
  throw new HistoryParseError(
    'cannot tell the format: expected JSON-lines, EDN or a Jepsen etcd log (use --format)',
    1,
  );
}

/**
 * Reads a history in `format` (default: detected with {@link detectFormat}).
 * @throws HistoryParseError naming the line, for malformed input.
 */
export function readHistory(text: string, format: Format | 'auto' = 'auto'): History {
  const f = format === 'auto' ? detectFormat(text) : format;
  switch (f) {
    case 'jsonl':
      return readJsonl(text);
    case 'edn':
      return readEdn(text);
    case 'porcupine-etcd':
      return text.trim() === '' ? { operations: [], format: f, model: 'etcd' } : readPorcupineEtcd(text);
    case 'porcupine-kv':
      return readPorcupineKv(text);
  }
}

/**
 * Reads a history file. JSON-lines is streamed in chunks into a compact history (memory grows
 * with the operations, not the text); the other formats are read whole. With `auto`, the format
 * is detected from the first non-blank line.
 * @throws HistoryParseError naming the line, for malformed input.
 */
export async function readHistoryFile(path: string, format: Format | 'auto' = 'auto'): Promise<History> {
  const { open, readFile } = await import('node:fs/promises');
  let f = format;
  if (f === 'auto') {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      const head = buf.subarray(0, bytesRead).toString('utf8');
      const lines = head.split('\n');
      // a first line longer than the probe: detect from what was read
      f = detectFormat(lines.find((l) => l.trim() !== '') ?? '');
    } finally {
      await fh.close();
    }
  }
  if (f === 'jsonl') return readJsonlFile(path);
  return readHistory(await readFile(path, 'utf8'), f);
}
