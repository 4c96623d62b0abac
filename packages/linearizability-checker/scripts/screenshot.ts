/**
 * The README screenshot: the HTML report of a violating 1 M-operation history, in headless
 * Chromium from Debian (scripts/install-chromium.sh) driven by playwright-core. Prints the
 * report's size and how long the browser took to open and draw it.
 *
 * Usage: pnpm --filter @paxkv/linearizability-checker screenshot [-- --ops 1000000]
 */
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { checkSync } from '../src/check.js';
import { generateHistory } from '../src/generate.js';
import { JsonlReader } from '../src/jsonl.js';
import { renderHtml } from '../src/report.js';

const args = process.argv.slice(2);
const i = args.indexOf('--ops');
const OPS = i >= 0 ? Number(args[i + 1]) : 1_000_000;
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(executablePath)) {
  console.error(`no Chromium at ${executablePath}: run scripts/install-chromium.sh (or set CHROMIUM)`);
  process.exit(1);
}
const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'paxkv-report-'));
try {
  const reader = new JsonlReader();
  const { violationId } = generateHistory({ ops: OPS, keys: 10, violate: true, seed: 42 }, (chunk) =>
    reader.push(chunk),
  );
  const history = reader.finish();
  const result = checkSync(history, { timeoutMs: 600_000 });
  const name = `kv-${OPS}-ops-stale-read.jsonl`;
  const html = renderHtml([{ name, result }]);
  const file = join(dir, 'report.html');
  writeFileSync(file, html);
  const bytes = statSync(file).size;
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 820 } });
    const t0 = performance.now();
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    await page.waitForSelector('#chart svg');
    const openMs = performance.now() - t0;
    const png = join(pkg, 'docs', 'report-1m.png');
    await page.screenshot({ path: png });
    console.log(
      `${OPS.toLocaleString('en')} ops, stale read at id ${violationId}: verdict ${result.verdict}; report ${(bytes / 1024).toFixed(0)} KiB (${bytes} bytes), opened and drawn by headless Chromium in ${openMs.toFixed(0)} ms; screenshot ${png}`,
    );
  } finally {
    await browser.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
