/**
 * TESTING ONLY. A module preloaded into `paxkv-server` processes (`node --import`) by the nemesis' mutation
 * sanity check. It turns on the kvstore's own test-only switch `ReplicaGroupConfig.unsafeMutation` (named by
 * the environment variable `PAXKV_NEMESIS_UNSAFE_MUTATION`, e.g. `staleLeaderReads`: a leader serves
 * linearizable reads from its local state without the read-index round) in every replica group of the
 * process, because `paxkv-server` has no flag for it. The patched check runs on the real server, real
 * sockets and real disk; only that one rule is broken.
 *
 * A name that is one of `@paxkv/bootstrap`'s `unsafeMembershipMutations` (e.g. `removeWithoutDrain`) switches
 * that membership rule off instead, in the module instance the server loads.
 *
 * It fails the process loudly if the kvstore no longer has the shape it patches, so a mutation test can never
 * pass vacuously.
 */
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The environment variable naming the mutation. */
export const UNSAFE_MUTATION_ENV = 'PAXKV_NEMESIS_UNSAFE_MUTATION';

const mutation = process.env[UNSAFE_MUTATION_ENV];
const root = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..', '..');
// A membership rule (`@paxkv/bootstrap`'s `unsafeMembershipMutations`, e.g. `removeWithoutDrain`): the
// switch of the module instance the server itself loads (the same source file).
const membership =
  mutation !== undefined && mutation !== '' && mutation !== 'none'
    ? ((await import(pathToFileURL(join(root, 'packages', 'bootstrap', 'src', 'membership.ts')).href)) as {
        unsafeMembershipMutations?: Record<string, boolean>;
      })
    : undefined;
if (
  membership?.unsafeMembershipMutations !== undefined &&
  mutation !== undefined &&
  mutation in membership.unsafeMembershipMutations
) {
  membership.unsafeMembershipMutations[mutation] = true;
  process.stderr.write(`unsafe-preload: TESTING ONLY membership mutation ${mutation} enabled\n`);
} else if (mutation !== undefined && mutation !== '' && mutation !== 'none') {
  const mod = (await import(
    pathToFileURL(join(root, 'packages', 'kvstore', 'src', 'replica-group.ts')).href
  )) as {
    ReplicaGroup?: { prototype: Record<string, unknown> };
  };
  const proto = mod.ReplicaGroup?.prototype;
  if (proto === undefined) {
    process.stderr.write(
      'unsafe-preload: @paxkv/kvstore ReplicaGroup not found; cannot apply the mutation\n',
    );
    process.exit(70);
  }
  // Every replica ticks and every leader submits: the first call of either switches that group.
  for (const name of ['submit', 'tick']) {
    const original = proto[name];
    if (typeof original !== 'function') {
      process.stderr.write(`unsafe-preload: ReplicaGroup.${name} not found; cannot apply the mutation\n`);
      process.exit(70);
    }
    proto[name] = function patched(this: { config?: { unsafeMutation?: string } }, ...args: unknown[]) {
      if (this.config === undefined || !('unsafeMutation' in this.config)) {
        process.stderr.write(
          'unsafe-preload: ReplicaGroup has no config.unsafeMutation; cannot apply the mutation\n',
        );
        process.exit(70);
      }
      if (this.config.unsafeMutation !== mutation) this.config = { ...this.config, unsafeMutation: mutation };
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    };
  }
  process.stderr.write(`unsafe-preload: TESTING ONLY mutation ${mutation} enabled in every replica group\n`);
}
