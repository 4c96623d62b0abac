/**
 * TLS for the benchmark's clusters (`--tls`): a throwaway CA per cluster (`@paxkv/server/certs`, as
 * `paxkv cluster start --tls` makes), the server flags that encrypt client AND peer traffic for paxkv
 * and etcd alike, and what their clients need to trust the CA.
 * @module
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import type { TlsOptions } from '@paxkv/common';
import { type LocalClusterCertificates, writeLocalClusterCertificates } from '@paxkv/server/certs';

/** The files of a benchmark cluster's throwaway CA (`<cluster dir>/tls/`; the CA key is not kept). */
export type BenchCertificates = LocalClusterCertificates;

/**
 * Writes a fresh CA and one server certificate (SANs 127.0.0.1, ::1, localhost; EKU serverAuth and
 * clientAuth, so the servers also present it to their peers) into `<dir>/tls/`.
 */
export function writeBenchCertificates(dir: string): Promise<BenchCertificates> {
  return writeLocalClusterCertificates(join(dir, 'tls'));
}

/**
 * `paxkv-server` flags for TLS on its one port (clients, peers, RESP, HTTP): peers dial each other with
 * the same certificate and check it names the address they claim.
 */
export function paxkvTlsFlags(certs: BenchCertificates): string[] {
  return ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tls-ca', certs.ca];
}

/**
 * `etcd` flags for TLS on the client port (gRPC and `/metrics`) and between members, where (as between
 * paxkv servers) each side must present a certificate signed by the CA (`--peer-client-cert-auth`).
 * With `--trusted-ca-file` etcd also requires a client certificate from its clients, so the clients of
 * both systems present the CA's client certificate (paxkv verifies it too): mutual TLS on both sides.
 */
export function etcdTlsFlags(certs: BenchCertificates): string[] {
  return [
    '--cert-file',
    certs.serverCert,
    '--key-file',
    certs.serverKey,
    '--trusted-ca-file',
    certs.ca,
    '--peer-cert-file',
    certs.serverCert,
    '--peer-key-file',
    certs.serverKey,
    '--peer-trusted-ca-file',
    certs.ca,
    '--peer-client-cert-auth',
  ];
}

/** What a benchmark client dials a `--tls` cluster with (PEM text; a `@paxkv/common` `TlsOptions`). */
export interface BenchClientTls extends TlsOptions {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** The `@paxkv/client` (and status probe) TLS options: trust the cluster's CA, present its client certificate. */
export function paxkvClientTls(certs: BenchCertificates): BenchClientTls {
  return {
    ca: readFileSync(certs.ca, 'utf8'),
    cert: readFileSync(certs.clientCert, 'utf8'),
    key: readFileSync(certs.clientKey, 'utf8'),
  };
}

/** The `etcd3` client's `credentials`: trust the cluster's CA, present its client certificate. */
export function etcdCredentials(certs: BenchCertificates): {
  rootCertificate: Buffer;
  certChain: Buffer;
  privateKey: Buffer;
} {
  return {
    rootCertificate: readFileSync(certs.ca),
    certChain: readFileSync(certs.clientCert),
    privateKey: readFileSync(certs.clientKey),
  };
}

/**
 * GETs an `https://` URL of a `--tls` cluster, trusting only its CA and presenting its client
 * certificate (Node's `fetch` cannot be given either), and resolves the body.
 * @throws Error on a TLS or HTTP failure, a status other than 200, or after `timeoutMs`.
 */
export function httpsGetText(url: string, certs: BenchCertificates, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const { ca, cert, key } = paxkvClientTls(certs);
    const req = request(url, { ca, cert, key, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`${url}: HTTP ${String(res.statusCode)}`));
        else resolve(Buffer.concat(chunks).toString('utf8'));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
