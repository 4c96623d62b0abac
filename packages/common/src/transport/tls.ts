/**
 * TLS for the transport: the settings a server or a dialer takes, what a verified peer certificate
 * says about its holder, and the translation of OpenSSL's failures into errors that say what to fix.
 * @module
 */
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { TlsError } from '../errors.js';

/**
 * TLS settings (PEM text or bytes), for a {@link TransportServer} (`cert` and `key` required) or a
 * dialer (`ca` required to verify the server; `cert`/`key` to present a client certificate).
 */
export interface TlsOptions {
  /** The CA certificate(s) trusted to sign the other side's certificate. */
  readonly ca: string | Uint8Array;
  /** This side's certificate chain. Required on a server; on a dialer it is the client certificate. */
  readonly cert?: string | Uint8Array;
  /** The private key of `cert`. */
  readonly key?: string | Uint8Array;
  /**
   * Server only: ask every client for a certificate, verified against `ca` (a connection without one,
   * or with one the CA did not sign, is still accepted, then `FramedConnection.tlsPeer` says so and the
   * application decides). Default true.
   */
  readonly requestClientCert?: boolean;
  /**
   * Server only: refuse, during the TLS handshake, any connection without a certificate signed by
   * `ca` (mutual TLS for everyone). Default false.
   */
  readonly requireClientCert?: boolean;
  /**
   * Dialer only: the name the server's certificate must carry (DNS or IP SAN). Default: the host
   * dialled (an IP or a DNS name), which is what makes a certificate name its address.
   */
  readonly servername?: string;
}

/** What the TLS handshake established about the other side of a connection. */
export interface TlsPeer {
  /** Whether the other side presented a certificate that `ca` signed (and that is in its validity period). */
  readonly authorized: boolean;
  /** OpenSSL's reason when it did not (e.g. `UNABLE_TO_VERIFY_LEAF_SIGNATURE`), or null. */
  readonly authorizationError: string | null;
  /** Subject common name of the certificate, if any. */
  readonly commonName: string | null;
  /** DNS names and IP addresses of its subject alternative names. */
  readonly hosts: readonly string[];
  /** Whether its extended key usage allows TLS server authentication (how a server certificate is told apart). */
  readonly serverAuth: boolean;
  /** Whether its extended key usage allows TLS client authentication. */
  readonly clientAuth: boolean;
}

const SERVER_AUTH_OID = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

/** Hosts named by a certificate's subject alternative names (`DNS:a, IP Address:1.2.3.4`). */
export function certificateHosts(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (!san) return [];
  const hosts: string[] = [];
  for (const part of san.split(',')) {
    const p = part.trim();
    if (p.startsWith('DNS:')) hosts.push(p.slice(4).toLowerCase());
    else if (p.startsWith('IP Address:')) hosts.push(p.slice(11).toLowerCase());
  }
  return hosts;
}

/** Reads {@link TlsPeer} from a TLS socket whose handshake finished; undefined on a plain socket. */
export function tlsPeerOf(socket: TLSSocket): TlsPeer {
  const cert = socket.getPeerX509Certificate();
  const error = socket.authorizationError;
  if (!cert) {
    return {
      authorized: false,
      authorizationError: error ? String(error) : 'NO_CERTIFICATE',
      commonName: null,
      hosts: [],
      serverAuth: false,
      clientAuth: false,
    };
  }
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? null;
  // Node reports the extended key usage OIDs as `keyUsage` (undefined when the extension is absent:
  // then every usage is allowed).
  const eku = cert.keyUsage as readonly string[] | undefined;
  return {
    authorized: socket.authorized,
    authorizationError: socket.authorized ? null : String(error ?? 'UNKNOWN'),
    commonName: cn,
    hosts: certificateHosts(cert),
    serverAuth: eku === undefined || eku.includes(SERVER_AUTH_OID),
    clientAuth: eku === undefined || eku.includes(CLIENT_AUTH_OID),
  };
}

const VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * A {@link TlsError} that says what to fix, from the error a TLS dial failed with, or null when the
 * error is not a TLS one (a refused connection, a timeout: the caller's usual handling applies).
 * @param side `dial`: this process dialled `address`; `accept`: `address` dialled this server.
 */
export function tlsFailure(error: Error, address: string, side: 'dial' | 'accept'): TlsError | null {
  const code = (error as { code?: unknown }).code;
  const c = typeof code === 'string' ? code : '';
  const m = error.message.toLowerCase();
  let reason: string | null = null;
  if (side === 'dial') {
    if (VERIFY_CODES.has(c))
      reason = `the certificate of ${address} is not signed by the CA this client trusts (${c}): give the CA file of the cluster (--cacert, tls.ca)`;
    else if (c === 'ERR_TLS_CERT_ALTNAME_INVALID')
      reason = `the certificate of ${address} does not name that host (${error.message}): issue the server certificate with the host or IP it is dialled at as a SAN, or dial that name`;
    else if (c === 'CERT_HAS_EXPIRED' || c === 'CERT_NOT_YET_VALID')
      reason = `the certificate of ${address} is outside its validity period (${c}): renew it`;
    else if (m.includes('wrong version number') || m.includes('packet length too long'))
      reason = `${address} does not speak TLS: turn TLS on at the server (--tls-cert/--tls-key) or dial it without TLS`;
    else if (m.includes('alert unknown ca') || m.includes('alert bad certificate'))
      reason = `${address} refused this client's certificate (${error.message}): the server trusts another CA than the one that signed --cert`;
    else if (m.includes('alert certificate required') || m.includes('peer did not return a certificate'))
      reason = `${address} requires a client certificate signed by its CA: give --cert and --key`;
    else if (c.startsWith('ERR_SSL_') || c.startsWith('ERR_TLS_'))
      reason = `the TLS handshake with ${address} failed: ${error.message}`;
  } else {
    if (m.includes('alert unknown ca') || m.includes('alert bad certificate'))
      reason = `${address} does not trust this server's certificate (${error.message}): give that client the CA that signed --tls-cert`;
    else if (m.includes('http request')) reason = `${address} spoke plain HTTP to a TLS port: use https`;
    else if (
      m.includes('wrong version number') ||
      m.includes('unknown protocol') ||
      m.includes('packet length too long')
    )
      reason = `${address} did not start a TLS handshake (plain TCP to a TLS port): give the client the CA file (--cacert, tls.ca) so it dials with TLS`;
    else if (m.includes('peer did not return a certificate'))
      reason = `${address} sent no client certificate, which this server requires`;
    else if (c === 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN' || m.includes('certificate unknown'))
      reason = `${address} rejected this server's certificate (${error.message}): check that the client trusts the CA that signed --tls-cert and dials a name the certificate carries`;
    else if (c === 'ECONNRESET' || m.includes('socket hang up'))
      reason = `${address} closed the connection during the TLS handshake (it probably rejected this server's certificate: check its CA file and the name it dials)`;
    else if (c.startsWith('ERR_SSL_') || c.startsWith('ERR_TLS_') || m.includes('ssl'))
      reason = `the TLS handshake from ${address} failed: ${error.message}`;
  }
  return reason === null ? null : new TlsError({ reason }, { cause: error });
}

/** True for a TLS socket (a `node:tls` `TLSSocket`). */
export function isTlsSocket(socket: unknown): socket is TLSSocket {
  return (socket as { encrypted?: unknown } | null)?.encrypted === true;
}

/** PEM text or bytes as `node:tls` takes them. */
export function tlsMaterial(v: string | Uint8Array): string | Buffer {
  return typeof v === 'string' ? v : Buffer.from(v);
}
