// A real browser for the tests: Debian's chromium, headless, driven by playwright-core.
//
// One browser per test session; commands arrive as JSON lines on stdin, answers leave as JSON
// lines on stdout ({ok: true, result} or {ok: false, error}).  tests/browser_helpers.py speaks it.
//   {"op": "goto", "url": "file:///..."}          a fresh page; waits for window.viseme.ready
//   {"op": "eval", "fn": "async (arg) => ...", "arg": ...}   the function's result (JSON)
//   {"op": "screenshot", "path": "/tmp/x.png"}
//   {"op": "errors"}                               console errors and page errors since goto
//   {"op": "close"}
// No browser is downloaded: CHROMIUM (default /usr/bin/chromium) is the system's.
import { chromium } from 'playwright-core';
import readline from 'node:readline';

// Without the networking switches Chromium keeps calling home, and this closed network refuses it.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--enable-unsafe-swiftshader',  // WebGL on the CPU (SwiftShader) with --disable-gpu
  '--mute-audio', '--autoplay-policy=no-user-gesture-required'];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ARGS, timeout: 60000,
});
const context = await browser.newContext({ viewport: { width: 800, height: 700 } });
let page = null;
let errors = [];

async function fresh() {
  if (page) await page.close();
  errors = [];
  page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  return page;
}

const ops = {
  async goto({ url }) {
    await fresh();
    await page.goto(url, { waitUntil: 'load', timeout: 60000 });
    await page.waitForFunction(() => window.viseme && window.viseme.ready, null, { timeout: 60000 });
    await page.evaluate(() => window.viseme.ready);
    return { errors };
  },
  async eval({ fn, arg }) {
    if (!page) await fresh();
    return page.evaluate(`(${fn})(${JSON.stringify(arg === undefined ? null : arg)})`);
  },
  async screenshot({ path }) {
    await page.screenshot({ path });
    return path;
  },
  async errors() { return errors; },
  async close() { await browser.close(); return null; },
};

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const cmd = JSON.parse(line);
    answer = { ok: true, result: await ops[cmd.op](cmd) };
  } catch (e) {
    answer = { ok: false, error: String(e && e.stack ? e.stack : e) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
  if (answer.ok && line.includes('"close"')) break;
}
await browser.close().catch(() => {});
process.exit(0);
