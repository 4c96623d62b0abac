/**
 * docs/deploy.md is checked, not just written: the server flags of its systemd unit and of its
 * `docker run` example parse with the server's own parser (a renamed or removed flag fails here), and
 * the unit passes `systemd-analyze verify` where systemd is installed (with the binary path swapped for
 * one that exists on the test machine).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadServerConfig } from './server-flags.js';

const doc = readFileSync(
  join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'deploy.md'),
  'utf8',
);

function block(lang: string): string {
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(doc);
  if (!m?.[1]) throw new Error(`docs/deploy.md has no \`\`\`${lang} block`);
  return m[1];
}

describe('docs/deploy.md', () => {
  it("the systemd unit's ExecStart flags parse", () => {
    const exec = /^ExecStart=(\S+) (.*)$/m.exec(block('ini'));
    expect(exec).not.toBeNull();
    const config = loadServerConfig((exec?.[2] ?? '').split(/\s+/), '0.0.0');
    expect(config).toMatchObject({
      host: '0.0.0.0',
      advertise: '10.0.0.12:7000',
      auth: true,
      tlsCa: '/etc/paxkv/tls/ca.pem',
    });
  });

  it("the docker run example's flags parse (after the image's ENTRYPOINT flags)", () => {
    const entry = /ENTRYPOINT \[(.*)\]/.exec(block('dockerfile'))?.[1] ?? '';
    const fixed = (JSON.parse(`[${entry}]`) as string[]).slice(1);
    const run = block('sh').replace(/\\\n/g, ' ');
    const args = run
      .slice(run.indexOf('paxkv-server') + 'paxkv-server'.length)
      .trim()
      .split(/\s+/);
    const config = loadServerConfig([...fixed, ...args], '0.0.0');
    expect(config).toMatchObject({ join: '10.0.0.11:7000', clusterTokenFile: '/etc/paxkv/token' });
  });

  it('the unit passes systemd-analyze verify (where systemd is installed)', () => {
    const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (probe.error) return; // no systemd here: the flag checks above still ran
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-unit-'));
    const unit = join(dir, 'paxkv.service');
    writeFileSync(unit, block('ini').replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
    const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    // User=paxkv may not exist on a test machine; every other complaint is a real problem of the unit.
    const problems = `${r.stdout}${r.stderr}`
      .split('\n')
      .filter((l) => l.trim() !== '' && !/paxkv/i.test(l.replace(unit, '')) && !/Documentation|docs/.test(l));
    expect(problems, `${r.stdout}${r.stderr}`).toEqual([]);
  });
});
