/**
 * How users, roles and the session-token secret are stored (see `access-control.ts`): reserved keys in
 * one `{auth}` partition, JSON records validated when read back, and the bounded pool of scrypt slots.
 */
import { readFileSync } from 'node:fs';
import {
  accessOf,
  BadRequestError,
  type ClientRequest,
  ConfigError,
  guardReservedKeys,
  type KvRequest,
  PasswordSchema,
  permissionDenied,
  permits,
  permitsWatch,
  RESERVED_KEY_PREFIX,
  type Role,
  RoleSchema,
  UnauthenticatedError,
  UnavailableError,
  type UserRecord,
  UserRecordSchema,
} from '@paxkv/common';

/** Prefix of every auth record: reserved (no client request may name it), one hash tag. */
export const AUTH_KEY_PREFIX = `${RESERVED_KEY_PREFIX}{auth}`;
/** Key of a stored user. */
export const userKey = (name: string): string => `${AUTH_KEY_PREFIX}user/${name}`;
/** Key of a stored role. */
export const roleKey = (name: string): string => `${AUTH_KEY_PREFIX}role/${name}`;
/** Key of the cluster's session-token secret. */
export const SECRET_KEY = `${AUTH_KEY_PREFIX}secret`;
/** Most scrypt computations at once (each takes 32 MiB and tens of ms of a thread-pool thread). */
const MAX_CONCURRENT_HASHES = 2;
/** Most logins waiting for a hashing slot; more are refused (UNAVAILABLE). */
const MAX_QUEUED_LOGINS = 64;

/** A stored value as text. */
export const asText = (v: string | Uint8Array): string =>
  typeof v === 'string' ? v : Buffer.from(v).toString('utf8');

/** A stored user record, or null when it does not parse or validate (never trusted unchecked). */
export function parseUserRecord(text: string): UserRecord | null {
  try {
    const parsed = UserRecordSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** A stored role, or null when it does not parse, does not validate or claims `admin` (built-in only). */
export function parseRoleRecord(text: string): Role | null {
  try {
    const parsed = RoleSchema.safeParse(JSON.parse(text));
    return parsed.success && parsed.data.admin !== true ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * At most {@link MAX_CONCURRENT_HASHES} password hashes at once, at most {@link MAX_QUEUED_LOGINS}
 * waiting (more are refused UNAVAILABLE): a login flood cannot take the server's memory or thread pool.
 */
export class HashSlots {
  private hashing = 0;
  private readonly queue: Array<() => void> = [];

  /** Runs `work` in a hashing slot, waiting for one if all are taken. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.hashing >= MAX_CONCURRENT_HASHES) {
      if (this.queue.length >= MAX_QUEUED_LOGINS)
        throw new UnavailableError({ reason: 'too many logins in progress; retry in a moment' });
      // The slot is handed over by the finishing holder (no decrement in between).
      await new Promise<void>((resolve) => this.queue.push(resolve));
    } else {
      this.hashing++;
    }
    try {
      return await work();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.hashing--;
    }
  }
}

/**
 * Test-only mutation (`PAXKV_UNSAFE_AUTH_SKIP_PERMISSIONS=1`): a logged-in user may do anything (roles
 * are not checked). It lets a test show that the role check is what refuses a read-only user's put;
 * never set it.
 */
export const UNSAFE_AUTH_SKIP_PERMISSIONS = process.env.PAXKV_UNSAFE_AUTH_SKIP_PERMISSIONS === '1';

/** The user a connection authenticated as. */
export interface Principal {
  readonly user: string;
  readonly generation: number;
}

/** Settings of {@link AccessControl}. */
export interface AccessControlOptions {
  /** Whether requests must be authenticated and authorised (`--auth`). */
  readonly enabled: boolean;
  /** Lifetime of a session token, ms. */
  readonly tokenTtlMs: number;
  /** How long a user or role read from the store is trusted, ms. */
  readonly cacheMs: number;
  /** File holding the password `root` (role `admin`) gets when it does not exist yet. */
  readonly rootPasswordFile?: string | undefined;
  /** Monotonic clock for the cache, ms. */
  readonly now: () => number;
}

/** The principal, or UNAUTHENTICATED saying how to log in. */
export function requireLogin(principal: Principal | null): Principal {
  if (principal === null) {
    throw new UnauthenticatedError({
      reason: 'this cluster requires a login',
      hint: 'log in first (paxkv login, paxkv --user NAME --password-file FILE, or the client option auth)',
    });
  }
  return principal;
}

/**
 * Reads the root password a new cluster's `root` user gets (`--root-password-file`): the file's text
 * without its trailing newline, validated like any password.
 * @throws {ConfigError} if the file cannot be read or the password is too short or too long.
 */
export function readRootPasswordFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new ConfigError({
      source: 'authentication',
      issues: [{ path: 'rootPasswordFile', problem: `cannot read it: ${(e as Error).message}` }],
    });
  }
  const ok = PasswordSchema.safeParse(text);
  if (!ok.success) {
    throw new ConfigError({
      source: 'authentication',
      issues: [{ path: 'rootPasswordFile', problem: ok.error.issues[0]?.message ?? 'invalid password' }],
    });
  }
  return text;
}

/**
 * The checks every client request gets, access control on or off: no key of the reserved range (a
 * range is clipped past it). Returns the request as it must run.
 * @throws {BadRequestError} for a reserved key.
 */
export function guardRequest(request: ClientRequest): ClientRequest {
  if (request.type === 'kv') {
    const op = guardReservedKeys(request.op);
    return op === request.op ? request : { ...request, op };
  }
  if (request.type === 'watch' && request.key?.startsWith(RESERVED_KEY_PREFIX)) {
    throw new BadRequestError({
      field: 'key',
      problem: 'keys starting with \\u0000 are reserved for the cluster',
    });
  }
  return request;
}

/**
 * Whether `roles` (the roles of `user`) allow a guarded request that needs a login: a `kv` operation
 * needs a role that permits each key it reads or writes, a watch one that permits its key or prefix (a
 * watch of everything only for admins), and managing users, roles and membership (and any request type
 * added later) is for admins; `watch.cancel` and `member.list` need only the login.
 * @throws {PermissionDeniedError} naming what is missing.
 */
export function requirePermission(roles: readonly Role[], user: string, request: ClientRequest): void {
  const admin = roles.some((r) => r.admin === true);
  if (request.type === 'kv') {
    const missing = permits(roles, accessOf((request as KvRequest).op));
    if (missing && !UNSAFE_AUTH_SKIP_PERMISSIONS) throw permissionDenied(user, missing);
  } else if (request.type === 'watch') {
    // A watch of '' would also stream the reserved keys: only an admin may watch everything.
    if (!permitsWatch(roles, request) || (request.prefix === '' && !admin))
      throw permissionDenied(user, {
        action: `watch ${request.prefix !== undefined ? `the prefix ${JSON.stringify(request.prefix)}` : 'the key'}`,
        ...(request.key !== undefined ? { key: request.key } : {}),
      });
  } else if (request.type !== 'watch.cancel' && request.type !== 'member.list') {
    if (!admin) throw permissionDenied(user, { action: `send ${request.type}` });
  }
}
