/**
 * The server's logger implementation: pino, one JSON object per line. It lives here, not in
 * `@paxkv/common`, so that the client library does not depend on a logging library.
 * @module
 */
import { DEFAULT_LOG_LEVEL, isLogLevel, type LogLevel } from '@paxkv/common';
import { pino } from 'pino';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Component name, logged as `name` on every line (`paxkv-server`...). */
  readonly name?: string;
  /**
   * Minimum level. Default: the `PAXKV_LOG_LEVEL` environment variable if it names a level, else
   * `DEFAULT_LOG_LEVEL` (info).
   */
  readonly level?: LogLevel;
  /**
   * Where lines go: a file descriptor or a writable stream. Default 2 (stderr), so that a CLI's stdout stays
   * free for its output.
   */
  readonly destination?: number | pino.DestinationStream;
  /** Fields added to every line (for example `{ node: 3 }`). */
  readonly base?: Readonly<Record<string, unknown>>;
  /** Paths of fields to redact (pino `redact` syntax). */
  readonly redact?: readonly string[];
}

/**
 * Creates a pino logger that writes one JSON object per line, with ISO timestamps, the level as a label,
 * and `err` serialised with its stack. Writes are synchronous so that nothing is lost when a process
 * crashes. It satisfies `@paxkv/common`'s `Logger` port.
 */
export function createLogger(options: LoggerOptions = {}): pino.Logger {
  const envLevel = process.env.PAXKV_LOG_LEVEL;
  const level = options.level ?? (isLogLevel(envLevel) ? envLevel : DEFAULT_LOG_LEVEL);
  const dest = options.destination ?? 2;
  const stream = typeof dest === 'number' ? pino.destination({ dest, sync: true }) : dest;
  return pino(
    {
      level,
      ...(options.name === undefined ? {} : { name: options.name }),
      base: { pid: process.pid, ...(options.base ?? {}) },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err },
      ...(options.redact === undefined ? {} : { redact: [...options.redact] }),
    },
    stream,
  );
}
