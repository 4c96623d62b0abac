/**
 * TLS for a nemesis cluster (`tls: true`): each server on its own loopback address with its own
 * certificate naming it, signed by a throwaway CA (`@paxkv/server/certs`, whose key is not kept).
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TlsOptions } from '@paxkv/common';
import { createCertificateAuthority, issueCertificate } from '@paxkv/server/certs';

/** The loopback address of server `slot` in a TLS cluster: `127.0.0.<10 + slot>` (Linux routes all of 127/8). */
export function slotAddress(slot: number): string {
  if (!Number.isInteger(slot) || slot < 0 || slot > 240)
    throw new RangeError(`slot must be 0..240, got ${slot}`);
  return `127.0.0.${10 + slot}`;
}

/** Certificate files of a TLS nemesis cluster. */
export interface ClusterCertificates {
  /** The CA certificate file (`--tls-ca`), trusted by servers and clients. */
  readonly caFile: string;
  /** The CA certificate (PEM), for the clients' `tls.ca`. */
  readonly ca: string;
  /** Per slot: the server's certificate and key files (`--tls-cert`, `--tls-key`). */
  readonly servers: ReadonlyArray<{ readonly certFile: string; readonly keyFile: string }>;
}

/**
 * Writes into `dir` a fresh CA (`ca.pem`) and, for each slot, `server-<slot>.pem` / `server-<slot>-key.pem`
 * (mode 0600) naming only {@link slotAddress}`(slot)`: a server can then pass for no other (its peers check
 * the certificate names the address the table gives it).
 */
export async function writeClusterCertificates(dir: string, servers: number): Promise<ClusterCertificates> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const authority = await createCertificateAuthority({ commonName: 'paxkv nemesis CA' });
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, authority.cert);
  const files: Array<{ certFile: string; keyFile: string }> = [];
  for (let slot = 0; slot < servers; slot++) {
    const pair = await issueCertificate(authority, {
      commonName: `nemesis server ${slot}`,
      hosts: [slotAddress(slot)],
    });
    const certFile = join(dir, `server-${slot}.pem`);
    const keyFile = join(dir, `server-${slot}-key.pem`);
    writeFileSync(certFile, pair.cert);
    writeFileSync(keyFile, pair.key, { mode: 0o600 });
    files.push({ certFile, keyFile });
  }
  return { caFile, ca: authority.cert, servers: files };
}

/** The server flags of `slot`. */
export function serverTlsFlags(certs: ClusterCertificates, slot: number): string[] {
  const own = certs.servers[slot];
  if (own === undefined) throw new RangeError(`no certificate for slot ${slot}`);
  return ['--tls-cert', own.certFile, '--tls-key', own.keyFile, '--tls-ca', certs.caFile];
}

/** The clients' TLS options: trust the CA (clients present no certificate; the servers do not require one). */
export function clientTls(certs: ClusterCertificates): TlsOptions {
  return { ca: certs.ca };
}
