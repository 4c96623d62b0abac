/**
 * The logging port of the server: the pino-compatible subset it uses (`logger.info({ fields }, 'msg')`).
 * `main.ts` passes a real pino logger; tests may pass {@link silentLogger} or a recording one.
 */
import type { LogLevel } from '@paxkv/common';
import { createLogger } from './pino-logger.js';

/** A log method: structured fields first, then the message. */
export type LogFn = (fields: Record<string, unknown>, message: string) => void;

/** The logger the server writes to. */
export interface ServerLogger {
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
}

/** A logger that drops everything. */
export const silentLogger: ServerLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

/**
 * The server's logger: a pino logger (`pino-logger.ts`) (JSON lines on stderr, synchronous writes so the last
 * lines before a crash are kept), named `paxkv-server`.
 */
export function createServerLogger(level: LogLevel): ServerLogger {
  const logger = createLogger({ name: 'paxkv-server', level });
  return {
    debug: (fields, message) => logger.debug(fields, message),
    info: (fields, message) => logger.info(fields, message),
    warn: (fields, message) => logger.warn(fields, message),
    error: (fields, message) => logger.error(fields, message),
  };
}
