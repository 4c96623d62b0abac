/**
 * Watch streams on the native port: a `watch` request opens a stream of one partition's changes on the
 * local replica of that partition (any replica serves watches from its applied state; no forwarding, no
 * leader needed), `watch.cancel` or the connection's close ends it. See `@paxkv/common`'s watch protocol.
 *
 * Every stream is bounded: a watcher whose connection has more than
 * {@link ServerConfig.watchMaxBufferedBytes} unsent bytes is ended with `too-slow` and the revision to
 * resume from, rather than buffered without limit; a connection holds at most
 * {@link MAX_WATCHES_PER_CONNECTION} streams.
 */
import type { FramedConnection, WatchCancel, WatchEndReason, WatchEvent, WatchRequest } from '@paxkv/common';
import type { ServerContext } from './context.js';
import type { GroupHost } from './group-lifecycle.js';
import type { WatchChange } from './group-port.js';

/** Most streams one connection may hold open. */
export const MAX_WATCHES_PER_CONNECTION = 1_000;

interface Stream {
  readonly partition: number;
  /** The revision to resume from: one past the last delivered revision. */
  next: number;
  cancel: () => void;
}

/** See the module comment. */
export class WatchStreams {
  private readonly byConnection = new Map<FramedConnection, Map<number, Stream>>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly groups: GroupHost,
  ) {}

  /** Number of open streams on this server. */
  get open(): number {
    let n = 0;
    for (const m of this.byConnection.values()) n += m.size;
    return n;
  }

  /** Opens the stream asked for by `req` on `socket` (answers `watch.ok` or `watch.end`). */
  start(socket: FramedConnection, req: WatchRequest): void {
    const streams = this.byConnection.get(socket) ?? new Map<number, Stream>();
    const endNow = (reason: WatchEndReason, resumeRevision: number, message: string) =>
      socket.send({ type: 'watch.end', id: req.id, reason, resumeRevision, message });
    const asked = req.fromRevision ?? 0;
    if (streams.has(req.id)) {
      endNow('unavailable', asked, `a watch with id ${req.id} is already open on this connection`);
      return;
    }
    if (streams.size >= MAX_WATCHES_PER_CONNECTION) {
      endNow('unavailable', asked, `more than ${MAX_WATCHES_PER_CONNECTION} watches on one connection`);
      return;
    }
    const group = this.groups.get(req.partition);
    // A joining replica (not started yet) has no state to watch.
    if (!group || group.configuration === null) {
      endNow(
        'unavailable',
        asked,
        `node ${this.ctx.nodeId ?? '?'} does not host partition ${req.partition}; watch on one of its replicas`,
      );
      return;
    }
    const filter = req.key !== undefined ? { key: req.key } : { prefix: req.prefix ?? '' };
    const stream: Stream = { partition: req.partition, next: asked, cancel: () => {} };
    const sink = (events: readonly WatchChange[]) => {
      if (socket.bufferedBytes > this.ctx.config.watchMaxBufferedBytes) {
        this.end(
          socket,
          req.id,
          'too-slow',
          stream.next,
          'the watcher reads slower than the partition changes',
        );
        return;
      }
      socket.send({ type: 'watch.events', id: req.id, events: events as WatchEvent[] });
      stream.next = (events[events.length - 1] as WatchChange).revision + 1;
      this.ctx.metrics.watchEvents.inc(events.length);
    };
    const opened = group.watch(filter, req.fromRevision, sink, (why) =>
      this.end(socket, req.id, 'unavailable', stream.next, why),
    );
    if ('reason' in opened) {
      if (opened.reason === 'compacted')
        endNow(
          'compacted',
          opened.compactRevision,
          `revision ${asked} of partition ${req.partition} is compacted on node ${this.ctx.nodeId ?? '?'}; re-read the keys and watch from ${opened.compactRevision}`,
        );
      else endNow('unavailable', asked, opened.message);
      return;
    }
    stream.next = opened.from;
    stream.cancel = opened.cancel;
    streams.set(req.id, stream);
    this.byConnection.set(socket, streams);
    socket.send({
      type: 'watch.ok',
      id: req.id,
      partition: req.partition,
      revision: opened.revision,
      from: opened.from,
    });
    opened.replay();
  }

  /** The client cancelled a stream. */
  cancel(socket: FramedConnection, req: WatchCancel): void {
    this.end(socket, req.id, 'cancelled', undefined, 'cancelled by the client');
  }

  /** The connection closed: its streams end silently. */
  closed(socket: FramedConnection): void {
    const streams = this.byConnection.get(socket);
    if (!streams) return;
    this.byConnection.delete(socket);
    for (const s of streams.values()) s.cancel();
  }

  private end(
    socket: FramedConnection,
    id: number,
    reason: WatchEndReason,
    resume: number | undefined,
    message: string,
  ): void {
    const streams = this.byConnection.get(socket);
    const s = streams?.get(id);
    if (!s) return;
    streams?.delete(id);
    s.cancel();
    if (socket.isOpen)
      socket.send({ type: 'watch.end', id, reason, resumeRevision: resume ?? s.next, message });
  }
}
