/**
 * Users, roles and what a request needs: the access model of client authentication (issue 14 part 5).
 *
 * - A **user** has a salted scrypt hash of its password ({@link hashPassword}, {@link verifyPassword}:
 *   `node:crypto` scrypt, constant-time compare) and a list of role names.
 * - A **role** grants key-prefix permissions: `read` or `readwrite` on every key that starts with the
 *   prefix (`''`: every key). Three roles are built in: `admin` (every key, and managing users and
 *   roles), `readwrite` (every key) and `read` (every key, read only). More are made with `role add`.
 * - Keys that start with {@link RESERVED_KEY_PREFIX} (a NUL character) hold the cluster's own records
 *   (users, roles, the token secret): no client request may name one, auth on or off, and a range is
 *   clamped to start after them ({@link guardReservedKeys}).
 * - {@link accessOf} lists what an operation reads and writes; {@link permits} decides.
 * @module
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { BadRequestError, PermissionDeniedError, UnauthenticatedError } from '../errors.js';
import { prefixEnd } from '../protocol/keys.js';
import type { KvOp } from '../protocol/kv.js';

/** First character of every key reserved for the cluster's own records. */
export const RESERVED_KEY_PREFIX = '\u0000';
/** The first key after the reserved ones (ranges start here at the lowest). */
export const RESERVED_KEY_END = '\u0001';

/** Names of users and roles: 1-64 characters of `[A-Za-z0-9_.@-]`. */
export const PrincipalNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.@-]+$/, 'use 1-64 characters among letters, digits and _ . @ -');

/** Most bytes of a password (scrypt takes any length; this bounds the work a request can ask for). */
export const MAX_PASSWORD_BYTES = 1024;

/** A password: 8 to {@link MAX_PASSWORD_BYTES} characters. */
export const PasswordSchema = z
  .string()
  .min(8, 'a password needs at least 8 characters')
  .max(MAX_PASSWORD_BYTES);

/** One permission of a role. */
export const PermissionSchema = z.object({
  /** Keys starting with this (`''`: every key). Never a reserved key. */
  prefix: z.string().max(4096),
  access: z.enum(['read', 'readwrite']),
});

/** A role: permissions, and whether it manages users and roles. */
export const RoleSchema = z.object({
  name: PrincipalNameSchema,
  permissions: z.array(PermissionSchema).max(256),
  admin: z.boolean().optional(),
});

/** Parameters and result of one scrypt hash (stored with the user). */
export const PasswordHashSchema = z.object({
  /** Algorithm tag, for later upgrades. */
  alg: z.literal('scrypt'),
  /** CPU/memory cost (a power of two). */
  N: z
    .number()
    .int()
    .min(1024)
    .max(1 << 20),
  r: z.number().int().min(1).max(32),
  p: z.number().int().min(1).max(16),
  /** Base64 salt (16 bytes). */
  salt: z.string().max(64),
  /** Base64 derived key (32 bytes). */
  hash: z.string().max(128),
});

/** A stored user. `generation` grows on every password change, so older tokens stop working. */
export const UserRecordSchema = z.object({
  name: PrincipalNameSchema,
  password: PasswordHashSchema,
  roles: z.array(PrincipalNameSchema).max(64),
  generation: z.number().int().nonnegative(),
});

/** A permission of a role. */
export type Permission = z.infer<typeof PermissionSchema>;
/** A role. */
export type Role = z.infer<typeof RoleSchema>;
/** A salted scrypt hash. */
export type PasswordHash = z.infer<typeof PasswordHashSchema>;
/** A stored user. */
export type UserRecord = z.infer<typeof UserRecordSchema>;

/** The roles every cluster has (they cannot be removed or changed). */
export const BUILTIN_ROLES: ReadonlyMap<string, Role> = new Map<string, Role>([
  ['admin', { name: 'admin', permissions: [{ prefix: '', access: 'readwrite' }], admin: true }],
  ['readwrite', { name: 'readwrite', permissions: [{ prefix: '', access: 'readwrite' }] }],
  ['read', { name: 'read', permissions: [{ prefix: '', access: 'read' }] }],
]);

/** scrypt settings of new hashes: N=2^15, r=8, p=1 (32 MiB, ~50-100 ms), as OWASP recommends. */
export const SCRYPT_DEFAULTS = { N: 1 << 15, r: 8, p: 1 } as const;

function scryptAsync(
  password: string,
  salt: Buffer,
  h: { N: number; r: number; p: number },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem must cover 128 * N * r bytes (plus a little).
    scrypt(password, salt, 32, { N: h.N, r: h.r, p: h.p, maxmem: 256 * h.N * h.r }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** Hashes `password` with a fresh 16-byte salt (in the libuv thread pool: the event loop is not blocked). */
export async function hashPassword(
  password: string,
  params: { N: number; r: number; p: number } = SCRYPT_DEFAULTS,
): Promise<PasswordHash> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, params);
  return { alg: 'scrypt', ...params, salt: salt.toString('base64'), hash: key.toString('base64') };
}

/** Whether `password` matches `stored` (constant-time comparison of the derived keys). */
export async function verifyPassword(stored: PasswordHash, password: string): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  const key = await scryptAsync(password, Buffer.from(stored.salt, 'base64'), stored);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** What one operation reads and writes: single keys, and key ranges `[start, end)` (`end` absent: no bound). */
export interface OpAccess {
  readonly reads: readonly string[];
  readonly writes: readonly string[];
  readonly ranges: ReadonlyArray<{ readonly start: string; readonly end: string | undefined }>;
  /** Lease operations: allowed to a user who may write somewhere. */
  readonly lease: boolean;
}

/** What `op` reads and writes (see {@link OpAccess}). */
export function accessOf(op: KvOp): OpAccess {
  const reads: string[] = [];
  const writes: string[] = [];
  const ranges: Array<{ start: string; end: string | undefined }> = [];
  let lease = false;
  switch (op.op) {
    case 'get':
    case 'size':
      reads.push(op.key);
      break;
    case 'put':
    case 'delete':
    case 'incr':
    case 'append':
    case 'set':
      writes.push(op.key);
      break;
    case 'cas':
    case 'getdel':
      reads.push(op.key);
      writes.push(op.key);
      break;
    case 'range':
      ranges.push({ start: op.start, end: op.end });
      break;
    case 'txn':
      for (const c of op.compare) reads.push(c.key);
      for (const o of [...op.success, ...op.failure]) {
        if ('get' in o) reads.push(o.get.key);
        else if ('put' in o) writes.push(o.put.key);
        else if ('delete' in o) writes.push(o.delete.key);
      }
      break;
    case 'lease-timetolive':
      lease = true;
      if ('key' in op && typeof op.key === 'string') reads.push(op.key);
      break;
    default:
      lease = true;
  }
  return { reads, writes, ranges, lease };
}

/**
 * Refuses an operation that names a reserved key (a key starting with {@link RESERVED_KEY_PREFIX}),
 * and returns `op` with a range clamped to start after the reserved keys. Applies to every client
 * request, whether authentication is on or not: the cluster's own records are written only by the
 * server's user management.
 * @throws {@link BadRequestError} naming the key.
 */
export function guardReservedKeys(op: KvOp): KvOp {
  const access = accessOf(op);
  for (const key of [...access.reads, ...access.writes]) {
    if (key.startsWith(RESERVED_KEY_PREFIX)) {
      throw new BadRequestError({
        field: 'key',
        problem:
          'keys starting with a NUL character (\\u0000) are reserved for the cluster (users, roles); use another key',
      });
    }
  }
  if (op.op === 'range' && op.start < RESERVED_KEY_END) {
    if (op.end !== undefined && op.end <= RESERVED_KEY_END) {
      throw new BadRequestError({
        field: 'end',
        problem: 'this range holds only reserved keys (starting with \\u0000); start it at \\u0001 or later',
      });
    }
    return { ...op, start: RESERVED_KEY_END };
  }
  return op;
}

function covers(p: Permission, start: string, end: string | undefined): boolean {
  if (!start.startsWith(p.prefix)) return false;
  if (p.prefix === '') return true;
  const limit = prefixEnd(p.prefix);
  return limit === undefined || (end !== undefined && end <= limit);
}

/**
 * Whether the roles allow the operation: every key read needs a `read` or `readwrite` permission whose
 * prefix it starts with, every key written a `readwrite` one, a range a permission whose prefix holds
 * the whole range, a lease operation some `readwrite` permission. Unknown role names grant nothing.
 * @returns null when allowed, else what is missing (for {@link PermissionDeniedError}).
 */
export function permits(roles: readonly Role[], access: OpAccess): { action: string; key?: string } | null {
  const perms = roles.flatMap((r) => r.permissions);
  for (const key of access.reads) {
    if (!perms.some((p) => key.startsWith(p.prefix))) return { action: 'read', key };
  }
  for (const key of access.writes) {
    if (!perms.some((p) => p.access === 'readwrite' && key.startsWith(p.prefix)))
      return { action: 'write', key };
  }
  for (const r of access.ranges) {
    if (!perms.some((p) => covers(p, r.start, r.end)))
      return {
        action: `read the range [${JSON.stringify(r.start)}, ${r.end === undefined ? 'end' : JSON.stringify(r.end)})`,
      };
  }
  if (access.lease && !perms.some((p) => p.access === 'readwrite')) return { action: 'use leases' };
  return null;
}

/** Whether a watch of `prefix` (or of one `key`) is allowed: read on a permission whose prefix holds it. */
export function permitsWatch(
  roles: readonly Role[],
  watch: { readonly key?: string | undefined; readonly prefix?: string | undefined },
): boolean {
  const perms = roles.flatMap((r) => r.permissions);
  if (watch.key !== undefined) return perms.some((p) => watch.key?.startsWith(p.prefix));
  const prefix = watch.prefix ?? '';
  return perms.some((p) => prefix.startsWith(p.prefix));
}

/**
 * Session tokens: `v1.<payload>.<mac>`, payload = base64url JSON `{u, g, exp}` (user, the user's
 * generation, expiry in ms since the epoch), mac = HMAC-SHA256 under the cluster's token secret. Any
 * server verifies them without state; a password change or removal (new generation) ends them.
 */
export const SessionTokens = {
  /** Makes a token for `user` (at `generation`) valid until `expiresAtMs`. */
  issue(secret: Uint8Array, user: string, generation: number, expiresAtMs: number): string {
    const payload = Buffer.from(JSON.stringify({ u: user, g: generation, exp: expiresAtMs })).toString(
      'base64url',
    );
    const mac = createHmac('sha256', secret).update(`v1.${payload}`).digest('base64url');
    return `v1.${payload}.${mac}`;
  },

  /**
   * Checks a token's MAC and expiry; returns its user and generation.
   * @throws {@link UnauthenticatedError} saying why (malformed, forged, expired).
   */
  verify(secret: Uint8Array, token: string, nowMs: number): { user: string; generation: number } {
    const hint = 'log in again (paxkv login, or the client option auth)';
    const bad = (reason: string) => new UnauthenticatedError({ reason, hint });
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== 'v1' || token.length > 1024) throw bad('malformed session token');
    const [, payload = '', mac = ''] = parts;
    const expected = createHmac('sha256', secret).update(`v1.${payload}`).digest();
    const got = Buffer.from(mac, 'base64url');
    if (got.length !== expected.length || !timingSafeEqual(got, expected))
      throw bad('the session token was not issued by this cluster');
    let body: unknown;
    try {
      body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      throw bad('malformed session token');
    }
    const parsed = z
      .object({ u: PrincipalNameSchema, g: z.number().int().nonnegative(), exp: z.number() })
      .safeParse(body);
    if (!parsed.success) throw bad('malformed session token');
    if (parsed.data.exp <= nowMs) throw bad('the session token has expired');
    return { user: parsed.data.u, generation: parsed.data.g };
  },
};

/** A {@link PermissionDeniedError} for `user` from what {@link permits} returned. */
export function permissionDenied(
  user: string,
  missing: { action: string; key?: string },
): PermissionDeniedError {
  return new PermissionDeniedError({
    user,
    action: missing.action,
    ...(missing.key !== undefined ? { key: missing.key } : {}),
  });
}
