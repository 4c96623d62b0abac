/**
 * The `paxkv-check` command line, as a function (the bin in `cli.ts` only calls it).
 * @module
 */
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { type CheckResult, check } from './check.js';
import { HistoryParseError, UnknownModelError, UsageError } from './errors.js';
import { FORMATS, type Format, readHistory, readHistoryFile } from './formats.js';
import { type GenerateOptions, type GenerateSummary, generateHistory } from './generate.js';
import type { History } from './history.js';
import { getBuiltinModel } from './models.js';
import { formatText, opAccessor, renderHtml } from './report.js';

/** The version of this package (from its package.json, beside `src/` and `dist/`). */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Exit codes of `paxkv-check`. */
export const EXIT = { linearizable: 0, notLinearizable: 1, unknown: 2, badInput: 3 } as const;

/** What the CLI touches, injectable for tests. */
export interface CliIo {
  /** Writes to standard output (no newline added). */
  out(text: string): void;
  /** Writes to standard error (no newline added). */
  err(text: string): void;
  /** True when standard error is a terminal (enables the progress line). */
  errIsTty: boolean;
  /** Reads a file as UTF-8. */
  readFile(path: string): Promise<string>;
  /** Writes a file. */
  writeFile(path: string, data: string): Promise<void>;
  /**
   * Reads a history file without holding its text (JSON-lines is streamed); when absent, the
   * CLI reads the text with {@link CliIo.readFile} and parses it.
   */
  readHistoryFile?(path: string, format: Format | 'auto'): Promise<History>;
}

/** The real process IO. */
export const processIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  errIsTty: process.stderr.isTTY === true,
  readFile: (p) => readFile(p, 'utf8'),
  writeFile: (p, d) => writeFile(p, d),
  readHistoryFile: (p, f) => readHistoryFile(p, f),
};

/** Usage text. */
export const USAGE = `usage: paxkv-check [options] FILE...

Checks that each history FILE is linearizable.

options:
  --model NAME     register | cas-register | kv | kv-txn | etcd | porcupine-kv (default: from the file,
                   else kv); add :unpartitioned to a kv model to check all keys together
  --format NAME    auto | ${FORMATS.join(' | ')} (default auto)
  --timeout DUR    time budget per file, e.g. 500ms, 30s, 2m (default 30s); over it: unknown
  --workers N      worker threads for partitions (default: auto)
  --all            keep checking the other partitions after one violates
  --no-fast-path   send every partition through the general search (for comparisons)
  --json           print one JSON object per file instead of text
  --html FILE      write a self-contained HTML report of all files
  -V, --version    print the version
  -h, --help       show this help

exit: 0 linearizable, 1 not linearizable, 2 unknown (budget ran out), 3 bad input or usage

       paxkv-check generate [--ops N] [--keys K] [--clients C] [--seed S] [--violate] [--out FILE]

Writes a generated kv history (JSON-lines; gets and puts of unique values by concurrent
clients, a few failed and indeterminate operations) to FILE or standard output. With
--violate, one get past the middle returns a stale value. Defaults: 1000 ops, 10 keys,
20 clients, seed 1.
`;

/** Runs `paxkv-check generate ...`; returns the exit code. */
export async function runGenerate(argv: readonly string[], io: CliIo): Promise<number> {
  const o: GenerateOptions = {};
  let out: string | undefined;
  try {
    for (let i = 0; i < argv.length; i++) {
      const flag = argv[i] as string;
      const num = (): number => {
        const v = argv[++i];
        if (v === undefined || !/^\d+$/.test(v)) throw new UsageError(`${flag} needs a whole number`);
        return Number(v);
      };
      switch (flag) {
        case '--ops':
          o.ops = num();
          break;
        case '--keys':
          o.keys = num();
          break;
        case '--clients':
          o.clients = num();
          break;
        case '--seed':
          o.seed = num();
          break;
        case '--violate':
          o.violate = true;
          break;
        case '--out': {
          const v = argv[++i];
          if (v === undefined) throw new UsageError('--out needs a file name');
          out = v;
          break;
        }
        default:
          throw new UsageError(`generate: unknown option ${flag} (see --help)`);
      }
    }
    let summary: GenerateSummary;
    if (out === undefined) {
      summary = generateHistory(o, (chunk) => io.out(chunk));
    } else {
      const { openSync, writeSync, closeSync } = await import('node:fs');
      const fd = openSync(out, 'w');
      try {
        summary = generateHistory(o, (chunk) => {
          writeSync(fd, chunk);
        });
      } finally {
        closeSync(fd);
      }
    }
    io.err(
      `generated ${summary.operations} operations${summary.violationId === undefined ? '' : `, stale read injected at id ${summary.violationId}`}${out === undefined ? '' : ` into ${out}`}\n`,
    );
    return EXIT.linearizable;
  } catch (err) {
    if (err instanceof UsageError || err instanceof RangeError) {
      io.err(`paxkv-check: ${err.message}\n`);
      return EXIT.badInput;
    }
    throw err;
  }
}

interface Args {
  model: string | undefined;
  format: Format | 'auto';
  timeoutMs: number;
  workers: number | 'auto';
  all: boolean;
  fastPath: boolean;
  json: boolean;
  html: string | undefined;
  files: string[];
  help: boolean;
  version: boolean;
}

/** Parses `500ms`, `30s`, `2m`, `1h` or a bare number of seconds into milliseconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new UsageError(`--timeout: cannot read ${JSON.stringify(s)}: use e.g. 500ms, 30s or 2m`);
  const v = Number(m[1]);
  const unit = m[2] ?? 's';
  return v * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
}

/** Parses the command line (without `node` and the script). @throws UsageError. */
export function parseArgs(argv: readonly string[]): Args {
  const a: Args = {
    model: undefined,
    format: 'auto',
    timeoutMs: 30_000,
    workers: 'auto',
    all: false,
    fastPath: true,
    json: false,
    html: undefined,
    files: [],
    help: false,
    version: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i] as string;
    const eq = raw.startsWith('--') ? raw.indexOf('=') : -1;
    const flag = eq > 0 ? raw.slice(0, eq) : raw;
    const value = (): string => {
      if (eq > 0) return raw.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '-h':
      case '--help':
        a.help = true;
        break;
      case '-V':
      case '--version':
        a.version = true;
        break;
      case '--model': {
        const m = value();
        getBuiltinModel(m);
        a.model = m;
        break;
      }
      case '--format': {
        const f = value();
        if (f !== 'auto' && !(FORMATS as readonly string[]).includes(f)) {
          throw new UsageError(
            `--format: unknown format ${JSON.stringify(f)}: use auto, ${FORMATS.join(', ')}`,
          );
        }
        a.format = f as Format | 'auto';
        break;
      }
      case '--timeout':
        a.timeoutMs = parseDuration(value());
        break;
      case '--workers': {
        const w = value();
        if (w === 'auto') a.workers = 'auto';
        else if (/^\d+$/.test(w)) a.workers = Number(w);
        else throw new UsageError(`--workers: expected a number or auto, got ${JSON.stringify(w)}`);
        break;
      }
      case '--no-fast-path':
        a.fastPath = false;
        break;
      case '--all':
        a.all = true;
        break;
      case '--json':
        a.json = true;
        break;
      case '--html':
        a.html = value();
        break;
      default:
        if (raw.startsWith('-') && raw !== '-') throw new UsageError(`unknown option ${raw} (see --help)`);
        a.files.push(raw);
    }
  }
  return a;
}

/**
 * Runs the CLI and returns the exit code: 3 if any file is unreadable or malformed, else 1 if any
 * is not linearizable, else 2 if any is unknown, else 0.
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  if (argv[0] === 'generate') return runGenerate(argv.slice(1), io);
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError || err instanceof UnknownModelError) {
      io.err(`paxkv-check: ${err.message}\n`);
      return EXIT.badInput;
    }
    throw err;
  }
  if (args.help) {
    io.out(USAGE);
    return EXIT.linearizable;
  }
  if (args.version) {
    io.out(`${packageVersion()}\n`);
    return EXIT.linearizable;
  }
  if (args.files.length === 0) {
    io.err(`paxkv-check: no history FILE given\n${USAGE}`);
    return EXIT.badInput;
  }
  let bad = false;
  let violation = false;
  let unknown = false;
  const checked: { name: string; result: CheckResult }[] = [];
  for (const file of args.files) {
    let result: CheckResult;
    try {
      const history = io.readHistoryFile
        ? await io.readHistoryFile(file, args.format)
        : readHistory(await io.readFile(file), args.format);
      const started = Date.now();
      let lastPrint = 0;
      result = await check(history, {
        ...(args.model === undefined ? {} : { model: args.model }),
        timeoutMs: args.timeoutMs,
        workers: args.workers,
        checkAllPartitions: args.all,
        fastPath: args.fastPath,
        ...(io.errIsTty
          ? {
              onProgress: (p) => {
                const now = Date.now();
                if (now - started < 1000 || now - lastPrint < 250) return;
                lastPrint = now;
                io.err(
                  `\r${file}: ${p.partitionsDone}/${p.partitions} partitions, ${(p.elapsedMs / 1000).toFixed(1)} s`,
                );
              },
            }
          : {}),
      });
      if (io.errIsTty && lastPrint !== 0) io.err('\r\x1b[K');
    } catch (err) {
      bad = true;
      const msg =
        err instanceof HistoryParseError
          ? err.withFile(file).message
          : err instanceof UnknownModelError
            ? `${file}: ${err.message}`
            : `${file}: ${(err as Error).message}`;
      if (args.json) io.out(`${JSON.stringify({ file, verdict: 'error', error: msg })}\n`);
      else io.err(`paxkv-check: ${msg}\n`);
      continue;
    }
    checked.push({ name: file, result });
    if (result.verdict === 'not-linearizable') violation = true;
    if (result.verdict === 'unknown') unknown = true;
    if (args.json) {
      const opAt = opAccessor(result.history);
      io.out(
        `${JSON.stringify({
          file,
          verdict: result.verdict,
          model: result.model,
          operations: result.operations,
          dropped: result.dropped.length,
          partitions: result.partitions.length,
          ms: Math.round(result.ms * 1000) / 1000,
          details: result.partitions.map((p) => ({
            key: p.key ?? null,
            verdict: p.verdict,
            operations: p.operations.length,
            ...(p.method === undefined ? {} : { method: p.method }),
            ...(p.reason === undefined ? {} : { reason: p.reason }),
            ...(p.minimal === undefined ? {} : { minimal: p.minimal.map((i) => opAt(i).id) }),
            ...(p.why === undefined ? {} : { why: p.why }),
            ...(p.verdict === 'not-linearizable'
              ? {
                  longestPrefix: (p.longestPrefix ?? []).map((i) => opAt(i).id),
                  stuck: (p.stuck ?? []).map((i) => opAt(i).id),
                }
              : {}),
          })),
        })}\n`,
      );
    } else {
      io.out(`${formatText(file, result)}\n`);
    }
  }
  if (args.html !== undefined) {
    await io.writeFile(args.html, renderHtml(checked));
    if (!args.json) io.err(`report written to ${args.html}\n`);
  }
  if (bad) return EXIT.badInput;
  if (violation) return EXIT.notLinearizable;
  if (unknown) return EXIT.unknown;
  return EXIT.linearizable;
}
