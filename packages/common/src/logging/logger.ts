/**
 * The logging port: the structured-logging subset the shared code calls (`logger.warn({ fields }, 'msg')`).
 * No logger implementation lives here, so `@paxkv/common` (and with it `@paxkv/client`) depends on no
 * logging library: a pino logger fits this interface as it is (the server passes one), so does a console
 * adapter or a test recorder.
 * @module
 */

/** One log method: structured fields first, then the message. */
export type LogFn = (fields: Record<string, unknown>, message: string) => void;

/** A structured logger (a pino logger satisfies it). */
export interface Logger {
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
}

/** Log levels, from most to least verbose, plus `silent`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Default log level of programs that take one (the server's `--log-level`). */
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

/** True when `x` names a log level. */
export function isLogLevel(x: unknown): x is LogLevel {
  return typeof x === 'string' && (LOG_LEVELS as readonly string[]).includes(x);
}

const drop: LogFn = () => {};

/** A logger that discards everything (the default of components that take an optional logger). */
export function silentLogger(): Logger {
  return { debug: drop, info: drop, warn: drop, error: drop };
}
