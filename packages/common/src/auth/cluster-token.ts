/**
 * The cluster token: a shared secret every server of a cluster is started with. It never travels: peers
 * prove they hold it with an HMAC over fresh nonces (see `peer-handshake.ts`), keyed with a key derived
 * from the token (HKDF-SHA256), so the token itself is used for nothing else.
 * @module
 */
import { hkdfSync, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';

/** Shortest accepted token, in characters: 16 (a random token of 16 printable characters has ~100 bits). */
export const MIN_CLUSTER_TOKEN_LENGTH = 16;
/** Longest accepted token, in characters. */
export const MAX_CLUSTER_TOKEN_LENGTH = 4096;

/** Domain separation of the HKDF derivation: a key derived for paxkv peer authentication only. */
const HKDF_SALT = 'paxkv cluster token v1';
const HKDF_INFO = 'peer authentication';

/**
 * The key derived from a cluster token. Opaque: it never prints (`toString`, `toJSON` and
 * `util.inspect` show `ClusterKey(redacted)`), so a logged config cannot leak it.
 */
export class ClusterKey {
  readonly #bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /**
   * Derives the key from a token.
   * @throws {@link ConfigError} if the token is shorter than {@link MIN_CLUSTER_TOKEN_LENGTH} or longer
   * than {@link MAX_CLUSTER_TOKEN_LENGTH} characters, or has leading or trailing white space (a token
   * read from a file keeps no newline; one with spaces around it is a copy-paste accident).
   */
  static fromToken(token: string, source = 'cluster token'): ClusterKey {
    const problem =
      token.length < MIN_CLUSTER_TOKEN_LENGTH
        ? `must be at least ${MIN_CLUSTER_TOKEN_LENGTH} characters (got ${token.length}); generate one with \`openssl rand -hex 32\` or \`node -e "console.log(crypto.randomBytes(32).toString('hex'))"\``
        : token.length > MAX_CLUSTER_TOKEN_LENGTH
          ? `must be at most ${MAX_CLUSTER_TOKEN_LENGTH} characters (got ${token.length})`
          : token.trim() !== token
            ? 'has leading or trailing white space'
            : undefined;
    if (problem !== undefined) throw new ConfigError({ source, issues: [{ path: 'clusterToken', problem }] });
    const bytes = new Uint8Array(hkdfSync('sha256', token, HKDF_SALT, HKDF_INFO, 32));
    return new ClusterKey(bytes);
  }

  /** The derived key bytes, for the HMAC of the handshake. Do not log or send them. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** Whether two keys are the same (constant time). */
  equals(other: ClusterKey): boolean {
    return timingSafeEqual(this.#bytes, other.#bytes);
  }

  /** Never the key. */
  toString(): string {
    return 'ClusterKey(redacted)';
  }

  /** Never the key. */
  toJSON(): string {
    return 'ClusterKey(redacted)';
  }

  /** Never the key (Node's `util.inspect`, used by `console.log`). */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'ClusterKey(redacted)';
  }
}

/** Where a token may come from, most explicit first. */
export interface ClusterTokenSources {
  /** The token itself (e.g. `--cluster-token`: visible to other users in the process list; prefer a file). */
  readonly token?: string | undefined;
  /** A file holding the token (e.g. `--cluster-token-file`); one trailing newline is ignored. */
  readonly file?: string | undefined;
  /** The environment (read: `PAXKV_CLUSTER_TOKEN`). Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** The environment variable a cluster token may come from. */
export const CLUSTER_TOKEN_ENV = 'PAXKV_CLUSTER_TOKEN';

/**
 * Resolves the cluster key from the first source set: `token`, then `file`, then `PAXKV_CLUSTER_TOKEN`.
 * Returns null when none is set (authentication off).
 * @throws {@link ConfigError} if both `token` and `file` are set, the file cannot be read, or the token
 * is invalid (see {@link ClusterKey.fromToken}).
 */
export function resolveClusterKey(sources: ClusterTokenSources): ClusterKey | null {
  if (sources.token !== undefined && sources.file !== undefined) {
    throw new ConfigError({
      issues: [
        { path: 'clusterToken', problem: 'give either --cluster-token or --cluster-token-file, not both' },
      ],
    });
  }
  if (sources.token !== undefined) return ClusterKey.fromToken(sources.token, '--cluster-token');
  if (sources.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(sources.file, 'utf8');
    } catch (e) {
      throw new ConfigError({
        source: sources.file,
        issues: [{ path: 'clusterTokenFile', problem: `cannot be read (${(e as Error).message})` }],
      });
    }
    return ClusterKey.fromToken(text.replace(/\r?\n$/, ''), sources.file);
  }
  const fromEnv = (sources.env ?? process.env)[CLUSTER_TOKEN_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return ClusterKey.fromToken(fromEnv, CLUSTER_TOKEN_ENV);
  return null;
}
