/**
 * A driver for data-driven interaction scripts (in the style of etcd raft's `testdata/*.txt`): a
 * script is a list of commands; each produces text output; the file holds both.
 * @module
 */
import { formatBallot, type NodeId } from '../ballot.js';
import type { PaxosConfig } from '../config.js';
import type { PaxosMessage } from '../messages.js';
import { SequencePaxos } from '../sequence-paxos.js';
import type { LogEntry } from '../stop-sign.js';
import { CheckedStorage } from './checked-storage.js';
import { HashApp, InvariantChecker } from './paxos-cluster.js';
import { type SimNode, Simulator } from './simulator.js';

type Msg = PaxosMessage<LogEntry<string>>;

/** Formats a message on one line, for scripts and traces. Heartbeats are summarised. */
export function formatMessage(m: Msg): string {
  switch (m.type) {
    case 'HeartbeatRequest':
      return `HeartbeatRequest round=${m.round}`;
    case 'HeartbeatReply':
      return `HeartbeatReply round=${m.round} ballot=${formatBallot(m.ballot)} qc=${m.quorumConnected} leader=${formatBallot(m.leader)}`;
    case 'PrepareReq':
      return `PrepareReq n=${formatBallot(m.n)}`;
    case 'Prepare':
      return `Prepare n=${formatBallot(m.n)} decided=${m.decidedIndex} acc=${formatBallot(m.acceptedRound)} len=${m.logLength}`;
    case 'Promise':
      return `Promise n=${formatBallot(m.n)} acc=${formatBallot(m.acceptedRound)} len=${m.logLength} decided=${m.decidedIndex} suffix@${m.suffixStart}=[${m.suffix.join(' ')}]${m.snapshot ? ` snapshot@${m.snapshot.index}` : ''}`;
    case 'AcceptSync':
      return `AcceptSync n=${formatBallot(m.n)} sync@${m.syncIndex}=[${m.entries.join(' ')}]${m.snapshot ? ` snapshot@${m.snapshot.index}` : ''} decided=${m.decidedIndex}`;
    case 'Accept':
      return `Accept n=${formatBallot(m.n)} @${m.start}=[${m.entries.join(' ')}] decided=${m.decidedIndex}`;
    case 'Accepted':
      return `Accepted n=${formatBallot(m.n)} len=${m.logLength}`;
    case 'Decide':
      return `Decide n=${formatBallot(m.n)} decided=${m.decidedIndex}`;
    case 'Forward':
      return `Forward [${m.entries.join(' ')}]`;
    case 'ReadIndexRequest':
      return `ReadIndexRequest n=${formatBallot(m.n)} round=${m.round}`;
    case 'ReadIndexReply':
      return `ReadIndexReply n=${formatBallot(m.n)} round=${m.round}`;
    case 'Nack':
      return `Nack n=${formatBallot(m.n)} promise=${formatBallot(m.promise)}`;
  }
}

class ScriptNode implements SimNode<Msg> {
  readonly app = new HashApp();
  constructor(
    readonly paxos: SequencePaxos<string>,
    private readonly trace: (line: string) => void,
  ) {}
  handle(from: NodeId, message: Msg): void {
    if (!message.type.startsWith('Heartbeat'))
      this.trace(`${from}->${this.paxos.pid} ${formatMessage(message)}`);
    this.paxos.handle(from, message);
  }
  tick(): void {
    this.paxos.tick();
  }
  drainOutbox() {
    return this.paxos.drainOutbox();
  }
  reconnected(peer: NodeId): void {
    this.paxos.reconnected(peer);
  }
  disconnected(peer: NodeId): void {
    this.paxos.disconnected(peer);
  }
}

/**
 * Runs interaction scripts against a group of replicas under a zero-delay simulator, with the
 * invariant checker on. Commands (one per line; `#` starts a comment):
 *
 * - `init <n> [key=value...]`: a fresh group of `n` replicas; values are `PaxosConfig` numbers.
 * - `tick [k]`: ticks every live replica `k` times (default 1) without delivering anything.
 * - `deliver [a->b]`: delivers every pending message (or those of one link) until quiet; prints
 *   each non-heartbeat message handled.
 * - `stabilize [k]`: `k` rounds of tick + deliver (default 1), printing nothing.
 * - `propose <pid> <command>`, `read <pid> <token>`, `compact <pid>`.
 * - `drop <a> <b>` / `heal <a> <b>`: break / heal the session; `partition 1,2 3`; `heal-all`.
 * - `crash <pid>`, `restart <pid>`.
 * - `state`: one line per replica (role, phase, ballots, log, decided, compacted).
 */
export class InteractionDriver {
  private sim: Simulator<Msg> | undefined;
  private ids: NodeId[] = [];
  private nodes = new Map<NodeId, ScriptNode>();
  private storages = new Map<NodeId, CheckedStorage<string>>();
  private checker = new InvariantChecker();
  private lines: string[] = [];
  private muted = false;

  /** Runs one command and returns its output (without trailing newline). */
  run(command: string): string {
    this.lines = [];
    const [cmd, ...args] = command.trim().split(/\s+/);
    try {
      this.exec(cmd ?? '', args);
    } catch (err) {
      const e = (err as { cause?: unknown }).cause ?? err;
      this.lines.push(`error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
    return this.lines.length === 0 ? 'ok' : this.lines.join('\n');
  }

  /**
   * Runs a whole script file's text. Blocks are `command\n----\noutput\n\n`; only the commands are
   * read, the outputs are regenerated: compare the result to the file to check it.
   */
  runScript(text: string): string {
    const out: string[] = [];
    const blocks = text.split(/\n\n+/);
    for (const block of blocks) {
      const lines = block.split('\n');
      const sep = lines.indexOf('----');
      const head = sep < 0 ? lines : lines.slice(0, sep);
      const comments = head.filter((l) => l.startsWith('#'));
      const commands = head.filter((l) => l.trim() !== '' && !l.startsWith('#'));
      if (commands.length === 0) {
        if (comments.length > 0) out.push(comments.join('\n'));
        continue;
      }
      const outputs = commands.map((c) => this.run(c));
      out.push([...comments, ...commands, '----', outputs.join('\n')].join('\n'));
    }
    return `${out.join('\n\n')}\n`;
  }

  private get s(): Simulator<Msg> {
    if (!this.sim) throw new Error('no group: start the script with `init <n>`');
    return this.sim;
  }

  private pid(x: string | undefined): NodeId {
    const n = Number(x);
    if (!this.ids.includes(n)) throw new Error(`unknown replica ${x}`);
    return n;
  }

  private exec(cmd: string, args: string[]): void {
    switch (cmd) {
      case 'init':
        this.init(Number(args[0] ?? 3), args.slice(1));
        return;
      case 'tick': {
        const k = Number(args[0] ?? 1);
        for (let i = 0; i < k; i++) this.s.tickAll();
        return;
      }
      case 'deliver': {
        if (args[0]) {
          const [a, b] = args[0].split('->').map((x) => this.pid(x)) as [number, number];
          while (this.s.deliverOne(a, b)) {}
        } else this.s.deliverAll();
        return;
      }
      case 'stabilize': {
        const k = Number(args[0] ?? 1);
        this.muted = true;
        try {
          for (let i = 0; i < k; i++) {
            this.s.tickAll();
            this.s.deliverAll();
          }
        } finally {
          this.muted = false;
        }
        return;
      }
      case 'propose':
        this.withLive(this.pid(args[0]), (p) => p.propose(args.slice(1).join(' ')));
        return;
      case 'read':
        this.withLive(this.pid(args[0]), (p) => p.readIndex(Number(args[1])));
        return;
      case 'compact': {
        const pid = this.pid(args[0]);
        const node = this.nodes.get(pid) as ScriptNode;
        this.withLive(pid, (p) => p.compact(node.app.applied, node.app.snapshot()));
        return;
      }
      case 'drop':
        this.s.disconnect(this.pid(args[0]), this.pid(args[1]));
        return;
      case 'heal':
        this.s.connect(this.pid(args[0]), this.pid(args[1]));
        return;
      case 'heal-all':
        this.s.healAll();
        return;
      case 'partition':
        this.s.partition(args.map((g) => g.split(',').map((x) => this.pid(x))));
        return;
      case 'crash':
        this.s.crash(this.pid(args[0]));
        return;
      case 'restart':
        this.s.restart(this.pid(args[0]));
        return;
      case 'state':
        this.state();
        return;
      default:
        throw new Error(`unknown command ${cmd}`);
    }
  }

  private init(n: number, kv: string[]): void {
    const config: Record<string, number> = {};
    for (const pair of kv) {
      const [k, v] = pair.split('=');
      if (k) config[k] = Number(v);
    }
    this.ids = Array.from({ length: n }, (_, i) => i + 1);
    this.nodes = new Map();
    this.storages = new Map(this.ids.map((p) => [p, new CheckedStorage<string>(p)]));
    this.checker = new InvariantChecker();
    const sim = new Simulator<Msg>({
      seed: 1,
      nodeIds: this.ids,
      minDelay: 0,
      maxDelay: 0,
      factory: (pid) => {
        const node = new ScriptNode(
          new SequencePaxos<string>({
            pid,
            peers: this.ids.filter((p) => p !== pid),
            storage: this.storages.get(pid) as CheckedStorage<string>,
            config: config as unknown as Partial<PaxosConfig>,
          }),
          (line) => {
            if (!this.muted) this.lines.push(line);
          },
        );
        this.nodes.set(pid, node);
        return node;
      },
    });
    sim.onEvent((e) => {
      const pid = e.kind === 'deliver' ? e.to : e.kind === 'tick' || e.kind === 'restart' ? e.pid : undefined;
      if (pid === undefined || !sim.isUp(pid)) return;
      const node = this.nodes.get(pid) as ScriptNode;
      this.checker.onDecided(pid, node.app, node.paxos.drainDecided());
      for (const r of node.paxos.drainReads()) {
        this.lines.push(
          'index' in r
            ? `read ${r.token} at ${pid}: index ${r.index}`
            : `read ${r.token} at ${pid}: ${r.error.name}`,
        );
      }
    });
    this.sim = sim;
  }

  private withLive(pid: NodeId, fn: (p: SequencePaxos<string>) => void): void {
    const node = this.nodes.get(pid);
    if (!node || !this.s.isUp(pid)) throw new Error(`replica ${pid} is down`);
    this.s.withNode(pid, () => fn(node.paxos));
  }

  private state(): void {
    for (const pid of this.ids) {
      const node = this.nodes.get(pid);
      const st = this.storages.get(pid) as CheckedStorage<string>;
      const c = st.getCompactedIndex();
      const log = st.getEntries(c, st.getLogLength()).join(' ');
      const persisted = `promise=${formatBallot(st.getPromise())} acc=${formatBallot(st.getAcceptedRound())} log=${c > 0 ? `<snapshot@${c}> ` : ''}[${log}] decided=${st.getDecidedIndex()}`;
      if (!node || !this.s.isUp(pid)) {
        this.lines.push(`${pid}: down ${persisted}`);
        continue;
      }
      const p = node.paxos;
      this.lines.push(
        `${pid}: ${p.role}/${p.phase} leader=${p.leader ?? '-'} ${persisted} applied=${node.app.applied}`,
      );
    }
  }
}
