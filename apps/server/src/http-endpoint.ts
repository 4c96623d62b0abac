/**
 * The HTTP side port of a server: `GET /health` (JSON, 200 when serving, 503 while waiting for the lookup
 * table or shutting down) and `GET /metrics` (Prometheus text). Nothing else; no request body is read.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type TlsOptions, tlsMaterial } from '@paxkv/common';

/** What `/health` reports. */
export interface HealthReport {
  /** `ok` when the server serves requests; `starting` before it has a table; `stopping` during shutdown. */
  readonly status: 'ok' | 'starting' | 'stopping';
  /** This server's node id, once known. */
  readonly node: number | null;
  /** The address clients and peers use. */
  readonly address: string;
  /** Lookup table version, or null before the table exists. */
  readonly tableVersion: number | null;
  /** Replica groups hosted here, with the leader each one currently knows. */
  readonly groups: ReadonlyArray<{ partition: number; leader: number | null; role: string }>;
}

/** The callbacks the endpoint reads from. */
export interface HttpEndpointSource {
  health(): HealthReport;
  metrics(): Promise<string>;
  readonly metricsContentType: string;
  /** Serve HTTPS with this certificate and key (no client certificate asked). Default: plain HTTP. */
  readonly tls?: TlsOptions;
}

/** A running HTTP endpoint. */
export class HttpEndpoint {
  private constructor(private readonly server: Server) {}

  /** Listens on `host:port` (port 0 picks a free one) and resolves once listening. */
  static async start(host: string, port: number, source: HttpEndpointSource): Promise<HttpEndpoint> {
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      handle(req, res, source).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`internal error: ${(e as Error).message}\n`);
      });
    };
    const t = source.tls;
    const server: Server =
      t?.cert !== undefined && t.key !== undefined
        ? createHttpsServer(
            { cert: tlsMaterial(t.cert), key: tlsMaterial(t.key), minVersion: 'TLSv1.2' },
            onRequest,
          )
        : createServer(onRequest);
    server.keepAliveTimeout = 5000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    await new Promise<void>((resolvePromise, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolvePromise();
      });
    });
    return new HttpEndpoint(server);
  }

  /** The bound port. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops accepting and closes idle connections. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, source: HttpEndpointSource): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
    res.end('only GET is supported\n');
    return;
  }
  if (path === '/health') {
    const report = source.health();
    res.writeHead(report.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(report)}\n`);
    return;
  }
  if (path === '/metrics') {
    const text = await source.metrics();
    res.writeHead(200, { 'content-type': source.metricsContentType });
    res.end(text);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found: try /health or /metrics\n');
}
