/**
 * The server's TLS: reading `--tls-cert`/`--tls-key`/`--tls-ca`, checking at start-up that the
 * certificate names the advertised host, and deciding whether a connection's certificate proves a peer.
 *
 * A peer's identity under TLS is its certificate: signed by the cluster CA, allowing TLS server
 * authentication (user certificates allow client authentication only, so a user can never pass for a
 * server), and naming, as a subject alternative name, the host of the address it claims: the address of
 * the node its `peer.hello` claims (from the lookup table), the address of its `checkin`, the host of
 * `--join` for the bootstrap server's `table.push`/`members`. Servers sharing one host share that name,
 * so on one host the certificate proves "a server of this cluster on this host", no more.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import {
  ConfigError,
  type FramedConnection,
  parseAddress,
  type TlsOptions,
  type TlsPeer,
} from '@paxkv/common';
import type { ServerConfig } from './config.js';

/**
 * Test-only mutation (`PAXKV_UNSAFE_TLS_ANY_CERTIFICATE=1`): any certificate the CA signed passes for
 * any peer at any address. It exists so a test can show that the identity check is what refuses a
 * user's certificate; never set it.
 */
export const UNSAFE_TLS_ANY_CERTIFICATE = process.env.PAXKV_UNSAFE_TLS_ANY_CERTIFICATE === '1';

/** Reads the TLS files named by the configuration; undefined when TLS is off. */
export function readTlsMaterial(config: ServerConfig): TlsOptions | undefined {
  if (config.tlsCert === undefined || config.tlsKey === undefined || config.tlsCa === undefined)
    return undefined;
  const read = (path: string, field: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new ConfigError({
        source: 'TLS files',
        issues: [{ path: field, problem: `cannot read ${path}: ${(e as Error).message}` }],
      });
    }
  };
  const cert = read(config.tlsCert, 'tlsCert');
  const key = read(config.tlsKey, 'tlsKey');
  const ca = read(config.tlsCa, 'tlsCa');
  try {
    const c = new X509Certificate(cert);
    const authority = new X509Certificate(ca);
    if (!c.checkIssued(authority) || !c.verify(authority.publicKey)) {
      throw new ConfigError({
        source: 'TLS files',
        issues: [
          {
            path: 'tlsCert',
            problem: `${config.tlsCert} is not signed by the CA in ${config.tlsCa}: peers would refuse it; issue it with that CA`,
          },
        ],
      });
    }
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError({
      source: 'TLS files',
      issues: [{ path: 'tlsCert', problem: `not a PEM certificate: ${(e as Error).message}` }],
    });
  }
  return { cert, key, ca, requestClientCert: true };
}

/**
 * Whether the PEM certificate names `host` (IP or DNS, wildcards as TLS checks them). A server whose
 * certificate does not name its advertised host is refused by every peer and client that dials it.
 */
export function certificateNames(certPem: string, host: string): boolean {
  const c = new X509Certificate(certPem);
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return isIP(h) !== 0 ? c.checkIP(h) !== undefined : c.checkHost(h) !== undefined;
}

/**
 * The connection's certificate when it proves a server of this cluster (CA-signed, server
 * authentication allowed), else null (no TLS, no certificate, another CA's, or a user's certificate).
 */
export function serverCertificate(conn: FramedConnection): TlsPeer | null {
  const peer = conn.tlsPeer;
  return peer?.authorized && (peer.serverAuth || UNSAFE_TLS_ANY_CERTIFICATE) ? peer : null;
}

/** Whether `cert` names the host of `address` (`host:port`). */
export function certificateCovers(cert: TlsPeer, address: string): boolean {
  if (UNSAFE_TLS_ANY_CERTIFICATE) return true;
  const hp = parseAddress(address);
  if (hp instanceof Error) return false;
  const host = hp.host.toLowerCase();
  return cert.hosts.some(
    (h) =>
      h === host ||
      (h.startsWith('*.') && host.endsWith(h.slice(1)) && !host.slice(0, -h.length + 1).includes('.')),
  );
}
