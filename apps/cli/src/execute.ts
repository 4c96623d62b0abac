/**
 * Runs a parsed {@link KvCommand} against a client and turns the result into an {@link Outcome}: what to
 * print (as text for people, or as JSON for scripts) and the exit code of the one-shot mode.
 */
import type { KvCommand } from './commands.js';
import { formatStatus, type StatusView } from './status-view.js';

/** A value as stored by paxkv: a UTF-8 string or raw bytes. */
export type CliValue = string | Uint8Array;

/**
 * The part of `@paxkv/client`'s `PaxkvClient` the CLI uses (a port, so the executor is testable on its own).
 */
export interface KvClientPort {
  get(key: string, options?: { stale?: boolean }): Promise<CliValue | null>;
  put(key: string, value: CliValue): Promise<{ created: boolean }>;
  cas(
    key: string,
    expected: CliValue | null,
    value: CliValue,
  ): Promise<{ outcome: 'applied' | 'mismatch' | 'not-found'; current: CliValue | null }>;
  delete(key: string): Promise<{ existed: boolean }>;
}

/** Reads the cluster status; the CLI gathers it from every server it knows. */
export type StatusReader = () => Promise<StatusView>;

/** Exit codes of the one-shot mode (issue 7): 0 ok, 1 not found or cas mismatch, 2 any error. */
export const EXIT = { ok: 0, notFound: 1, error: 2 } as const;

/** What a command produced. */
export interface Outcome {
  /** 0 ok, 1 not found / mismatch, 2 error. */
  readonly exitCode: number;
  /** Text for stdout (human mode); for `get`, exactly the value. Empty for nothing. */
  readonly stdout: string | Uint8Array;
  /** Text for stderr (human mode), e.g. "not found" or the error message. */
  readonly stderr: string;
  /** The machine-readable result for `--json`. */
  readonly json: Record<string, unknown>;
}

/** The JSON form of a value: strings as they are, bytes as `{ base64 }`. */
export function valueToJson(value: CliValue | null): unknown {
  if (value === null) return null;
  if (typeof value === 'string') return value;
  return { base64: Buffer.from(value).toString('base64') };
}

/** A value for a person to read: strings as they are, bytes as `<N bytes: hex…>`. */
export function displayValue(value: CliValue): string {
  if (typeof value === 'string') return value;
  const hex = Buffer.from(value.subarray(0, 32)).toString('hex');
  return `<${value.length} bytes: ${hex}${value.length > 32 ? '…' : ''}>`;
}

/** The error code of a paxkv error (`code` field), or `ERROR` for anything else. */
export function errorCode(e: unknown): string {
  if (
    typeof e === 'object' &&
    e !== null &&
    'code' in e &&
    typeof (e as { code: unknown }).code === 'string'
  ) {
    return (e as { code: string }).code;
  }
  return 'ERROR';
}

/** The outcome of a failed command: exit code 2 and the error's own message, which says what to do. */
export function errorOutcome(command: string, e: unknown): Outcome {
  const message = e instanceof Error ? e.message : String(e);
  const code = errorCode(e);
  return {
    exitCode: EXIT.error,
    stdout: '',
    stderr: `error (${code}): ${message}`,
    json: { ok: false, command, error: { code, message } },
  };
}

/**
 * Executes one command. Never throws: errors become an outcome with exit code 2.
 * `help` and `exit` are handled by the caller and yield an error outcome here.
 */
export async function execute(
  command: KvCommand,
  client: KvClientPort,
  status: StatusReader,
): Promise<Outcome> {
  try {
    switch (command.kind) {
      case 'get': {
        const value = await client.get(command.key, command.stale ? { stale: true } : {});
        if (value === null) {
          return {
            exitCode: EXIT.notFound,
            stdout: '',
            stderr: `not found: ${command.key}`,
            json: { ok: true, command: 'get', key: command.key, found: false, value: null },
          };
        }
        return {
          exitCode: EXIT.ok,
          stdout: value,
          stderr: '',
          json: { ok: true, command: 'get', key: command.key, found: true, value: valueToJson(value) },
        };
      }
      case 'put': {
        const r = await client.put(command.key, command.value);
        return {
          exitCode: EXIT.ok,
          stdout: r.created ? 'OK (created)' : 'OK (updated)',
          stderr: '',
          json: { ok: true, command: 'put', key: command.key, created: r.created },
        };
      }
      case 'cas': {
        const r = await client.cas(command.key, command.expected, command.value);
        const json = {
          ok: true,
          command: 'cas',
          key: command.key,
          outcome: r.outcome,
          current: valueToJson(r.current),
        };
        if (r.outcome === 'applied') return { exitCode: EXIT.ok, stdout: 'OK (applied)', stderr: '', json };
        const why =
          r.outcome === 'not-found'
            ? `not applied: ${command.key} does not exist`
            : r.current === null
              ? `not applied: ${command.key} exists (expected it absent)`
              : `not applied: current value is ${displayValue(r.current)}`;
        return { exitCode: EXIT.notFound, stdout: '', stderr: why, json };
      }
      case 'delete': {
        const r = await client.delete(command.key);
        const json = { ok: true, command: 'delete', key: command.key, existed: r.existed };
        if (r.existed) return { exitCode: EXIT.ok, stdout: 'OK (deleted)', stderr: '', json };
        return { exitCode: EXIT.notFound, stdout: '', stderr: `not found: ${command.key}`, json };
      }
      case 'status': {
        const view = await status();
        return {
          exitCode: EXIT.ok,
          stdout: formatStatus(view),
          stderr: '',
          json: { ok: true, command: 'status', status: view },
        };
      }
      default:
        return errorOutcome(command.kind, new Error(`"${command.kind}" is only available at the prompt`));
    }
  } catch (e) {
    return errorOutcome(command.kind, e);
  }
}
