/**
 * The logger factory: structured JSON logs with pino.
 * @module
 */
import { pino } from 'pino';

/** A pino logger. */
export type Logger = pino.Logger;

/** Log levels, from most to least verbose, plus `silent`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Default log level when neither the option nor `PAXKV_LOG_LEVEL` sets one. */
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Component name, logged as `name` on every line (`paxkv-server`, `bootstrap`...). */
  readonly name?: string;
  /**
   * Minimum level. Default: the `PAXKV_LOG_LEVEL` environment variable if it names a level, else
   * {@link DEFAULT_LOG_LEVEL}.
   */
  readonly level?: LogLevel;
  /**
   * Where lines go: a file descriptor or a writable stream. Default 2 (stderr), so that a CLI's
   * stdout stays free for its output.
   */
  readonly destination?: number | pino.DestinationStream;
  /** Fields added to every line (for example `{ node: 3 }`). */
  readonly base?: Readonly<Record<string, unknown>>;
  /** Paths of fields to redact (pino `redact` syntax). */
  readonly redact?: readonly string[];
}

function isLevel(x: unknown): x is LogLevel {
  return typeof x === 'string' && (LOG_LEVELS as readonly string[]).includes(x);
}

/**
 * Creates a pino logger that writes one JSON object per line, with ISO timestamps, the level as a
 * label, and `err` serialised with its stack. Writes are synchronous so that nothing is lost when a
 * process crashes.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const envLevel = process.env.PAXKV_LOG_LEVEL;
  const level = options.level ?? (isLevel(envLevel) ? envLevel : DEFAULT_LOG_LEVEL);
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

/** A logger that discards everything (the default of components that take an optional logger). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
