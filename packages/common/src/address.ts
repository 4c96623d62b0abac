/**
 * Node ids and `host:port` addresses.
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';
import { InvalidAddressError } from './errors.js';

/** A node id: a positive safe integer, unique in a cluster, assigned by the bootstrap server. */
export type NodeId = number;

/** Returns true if `x` is a valid {@link NodeId} (a positive safe integer). */
export function isNodeId(x: unknown): x is NodeId {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}

/** A parsed address. `host` is a hostname, an IPv4 address, or an IPv6 address without brackets. */
export interface HostPort {
  /** Hostname, IPv4 or IPv6 (without brackets). */
  readonly host: string;
  /** TCP port, 1..65535 (0 only where `allowPortZero` was passed). */
  readonly port: number;
}

/** Options of {@link parseAddress}. */
export interface ParseAddressOptions {
  /** Accept port 0 ("any free port", for listening only). Default false. */
  readonly allowPortZero?: boolean;
}

/** Longest accepted address string, in characters (a DNS name is at most 253). */
export const MAX_ADDRESS_LENGTH = 300;

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function isHostname(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  return name.split('.').every((label) => LABEL.test(label));
}

/**
 * Parses a `host:port` string. IPv6 hosts must be bracketed (`[::1]:7001`). Returns the parsed
 * address or an {@link InvalidAddressError}; never throws.
 */
export function parseAddress(
  input: string,
  options: ParseAddressOptions = {},
): HostPort | InvalidAddressError {
  const fail = (problem: string) => new InvalidAddressError({ input: String(input).slice(0, 80), problem });
  if (typeof input !== 'string') return fail('not a string');
  if (input.length > MAX_ADDRESS_LENGTH) return fail(`longer than ${MAX_ADDRESS_LENGTH} characters`);
  let host: string;
  let portText: string;
  if (input.startsWith('[')) {
    const close = input.indexOf(']');
    if (close < 0) return fail("missing ']' after an IPv6 host");
    host = input.slice(1, close);
    if (input[close + 1] !== ':') return fail("expected ':' and a port after ']'");
    portText = input.slice(close + 2);
    if (!isIPv6(host)) return fail(`'${host}' is not an IPv6 address`);
  } else {
    const colon = input.lastIndexOf(':');
    if (colon < 0) return fail('missing ":port"');
    host = input.slice(0, colon);
    portText = input.slice(colon + 1);
    if (host.includes(':')) return fail('IPv6 hosts must be written in brackets, e.g. [::1]:7001');
    if (!isIPv4(host) && !isHostname(host)) return fail(`'${host}' is not a valid hostname or IPv4 address`);
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return fail(`port '${portText}' is not a number`);
  const port = Number(portText);
  const min = options.allowPortZero ? 0 : 1;
  if (port < min || port > 65535) return fail(`port ${port} is outside ${min}..65535`);
  return { host, port };
}

/** Returns true if `x` is a valid `host:port` address string (port 1..65535). */
export function isAddress(x: unknown): x is string {
  return typeof x === 'string' && !(parseAddress(x) instanceof InvalidAddressError);
}

/** Formats a host and port as an address string, bracketing IPv6 hosts. */
export function formatAddress(hostPort: HostPort): string {
  return isIPv6(hostPort.host) ? `[${hostPort.host}]:${hostPort.port}` : `${hostPort.host}:${hostPort.port}`;
}
