/**
 * X.509 certificates for a paxkv cluster: a CA, server certificates that name their hosts (used both to
 * serve and, as client certificates, to dial peers), and client certificates for users. Made with
 * `@peculiar/x509` over Node's WebCrypto (ECDSA P-256, SHA-256): Node can verify certificates but not
 * issue them, and the issue asks for no `openssl` subprocess (a binary that may be missing or differ
 * between hosts). `paxkv cluster start --tls` uses it for a throwaway local CA; for a real deployment
 * any CA works (see docs/deploy.md).
 * @module
 */

import { webcrypto } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata polyfill first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto;
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

/** A certificate and its private key, as PEM text. */
export interface PemPair {
  /** The certificate (`-----BEGIN CERTIFICATE-----`). */
  readonly cert: string;
  /** Its PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`). */
  readonly key: string;
}

/** A certificate authority that can issue certificates. */
export interface CertificateAuthority extends PemPair {
  /** @internal the signing key and certificate. */
  readonly signer: { readonly keys: CryptoKeyPair; readonly certificate: x509.X509Certificate };
}

/** Options of {@link createCertificateAuthority}. */
export interface CaOptions {
  /** Subject common name. Default `paxkv cluster CA`. */
  readonly commonName?: string;
  /** Validity in days from now. Default 3650. */
  readonly validDays?: number;
}

async function keyPem(keys: CryptoKeyPair): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** Distinguished names are built from a common name only; escape what RFC 4514 reserves. */
function dn(commonName: string): string {
  return `CN=${commonName.replace(/([,+"\\<>;=])/g, '\\$1')}`;
}

/** Makes a new self-signed CA (a fresh key; nothing is written). */
export async function createCertificateAuthority(options: CaOptions = {}): Promise<CertificateAuthority> {
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: dn(options.commonName ?? 'paxkv cluster CA'),
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(now + (options.validDays ?? 3650) * DAY_MS),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { cert: certificate.toString('pem'), key: await keyPem(keys), signer: { keys, certificate } };
}

/** Options of {@link issueCertificate}. */
export interface IssueOptions {
  /** Subject common name (a user name for a client certificate, a node name for a server). */
  readonly commonName: string;
  /**
   * `server`: a paxkv server's certificate, valid for TLS server and client authentication (it serves
   * and dials peers); its `hosts` are the names and IPs it is dialled at. `client`: a user's
   * certificate, TLS client authentication only (never taken for a peer). Default `server`.
   */
  readonly usage?: 'server' | 'client';
  /** DNS names and IP addresses for the subject alternative names (a server needs at least one). */
  readonly hosts?: readonly string[];
  /** Validity in days from now. Default 825. */
  readonly validDays?: number;
}

/** Issues a certificate signed by `ca` for a fresh key. */
export async function issueCertificate(ca: CertificateAuthority, options: IssueOptions): Promise<PemPair> {
  const usage = options.usage ?? 'server';
  const hosts = options.hosts ?? [];
  if (usage === 'server' && hosts.length === 0) {
    throw new Error('a server certificate needs at least one host (a DNS name or an IP it is dialled at)');
  }
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const eku =
    usage === 'server'
      ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
      : [x509.ExtendedKeyUsage.clientAuth];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(eku, false),
    await x509.AuthorityKeyIdentifierExtension.create(ca.signer.keys.publicKey, false, crypto),
  ];
  if (hosts.length > 0) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension(
        hosts.map((h) => ({ type: isIP(h) !== 0 ? ('ip' as const) : ('dns' as const), value: h })),
        false,
      ),
    );
  }
  const certificate = await x509.X509CertificateGenerator.create(
    {
      subject: dn(options.commonName),
      issuer: ca.signer.certificate.subject,
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(now + (options.validDays ?? 825) * DAY_MS),
      publicKey: keys.publicKey,
      signingKey: ca.signer.keys.privateKey,
      signingAlgorithm: ALG,
      extensions,
    },
    crypto,
  );
  return { cert: certificate.toString('pem'), key: await keyPem(keys) };
}

/** The files {@link writeLocalClusterCertificates} wrote. */
export interface LocalClusterCertificates {
  /** The CA certificate every server and client trusts (`--tls-ca`, `--cacert`). */
  readonly ca: string;
  /** The server certificate and key (`--tls-cert`, `--tls-key`), shared by the local servers. */
  readonly serverCert: string;
  readonly serverKey: string;
  /** A client certificate and key (usage `client`, common name `root`), for `--cert`/`--key`. */
  readonly clientCert: string;
  readonly clientKey: string;
}

/**
 * Makes a throwaway CA in `dir` (`ca.pem`; its key is NOT kept, so no one can issue more) with one server
 * certificate for `hosts` (default 127.0.0.1, ::1, localhost) and a client certificate. Keys are written
 * with mode 0600. For a local cluster only: every server shares the certificate because they share the
 * host.
 */
export async function writeLocalClusterCertificates(
  dir: string,
  hosts: readonly string[] = ['127.0.0.1', '::1', 'localhost'],
): Promise<LocalClusterCertificates> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = await createCertificateAuthority({ commonName: 'paxkv local cluster CA' });
  const server = await issueCertificate(ca, { commonName: 'paxkv server', hosts, usage: 'server' });
  const client = await issueCertificate(ca, { commonName: 'root', usage: 'client' });
  const files = {
    ca: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server-key.pem'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client-key.pem'),
  };
  writeFileSync(files.ca, ca.cert);
  writeFileSync(files.serverCert, server.cert);
  writeFileSync(files.serverKey, server.key, { mode: 0o600 });
  writeFileSync(files.clientCert, client.cert);
  writeFileSync(files.clientKey, client.key, { mode: 0o600 });
  return files;
}
