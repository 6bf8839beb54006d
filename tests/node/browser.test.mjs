// The package in a real browser (headless Chromium, Debian's): the files of
// the `npm pack` tarball as a page gets them, served by the router's static
// file server, the wasm fetched from next to index.js (streaming compile), or
// from elsewhere via wasmUrl.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { startRouter } from './support/router.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CHROMIUM = process.env.HYPERSTREAMS_CHROMIUM ?? '/usr/bin/chromium';

// The page: connect, subscribe, publish every payload kind, fail a request.
const page = (importPath, options) => `<!doctype html>
<script type="module">
import { connect, HyperStreamsError } from '${importPath}';
try {
  const client = await connect(\`ws://\${location.host}/ws\`, ${options});
  const got = [];
  const all = new Promise((resolve) => client.subscribe('browser.check', (m) => {
    got.push({ text: m.text, isJson: m.isJson, json: m.isJson ? m.json : null, bytes: [...m.bytes] });
    if (got.length === 3) resolve();
  }));
  await new Promise((resolve) => setTimeout(resolve, 50));
  await client.publish('browser.check', 'text from chromium');
  await client.publish('browser.check', { from: 'chromium' });
  await client.publish('browser.check', new Uint8Array([1, 2, 3]), { ack: true });
  await all;
  let error = null;
  try { await client.request('nobody', 'here', 'x', { timeoutMs: 2000 }); }
  catch (e) { error = { code: e.code, isHyperStreamsError: e instanceof HyperStreamsError }; }
  await client.close();
  window.result = { got, error, state: client.state };
} catch (e) {
  window.result = { failed: String(e && e.stack || e) };
}
</script>`;

let site;
let router;
let browser;

before(async () => {
    site = mkdtempSync(join(tmpdir(), 'hyperstreams-browser-'));
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', site], { cwd: root, encoding: 'utf8' });
    const tarball = join(site, JSON.parse(out.slice(out.indexOf('[')))[0].filename);
    execFileSync('tar', ['-xzf', tarball, '-C', site]);
    const dist = join(site, 'package', 'dist');
    // Default layout: the package's files together.
    cpSync(dist, join(site, 'pkg'), { recursive: true });
    // The escape hatch: no wasm next to the JS, it lives in /assets.
    cpSync(dist, join(site, 'custom'), { recursive: true });
    rmSync(join(site, 'custom', 'hyperstreams.wasm'));
    mkdirSync(join(site, 'assets'));
    cpSync(join(dist, 'hyperstreams.wasm'), join(site, 'assets', 'hs.wasm'));
    writeFileSync(join(site, 'index.html'), page('./pkg/index.js', '{ name: "chromium" }'));
    writeFileSync(join(site, 'custom.html'), page('./custom/index.js', '{ wasmUrl: "/assets/hs.wasm" }'));

    router = await startRouter({ args: ['--web', site] });
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (set HYPERSTREAMS_CHROMIUM)`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
});

after(async () => {
    await browser?.close();
    await router?.stop();
    if (site) rmSync(site, { recursive: true, force: true });
});

async function run(path) {
    const tab = await browser.newPage();
    const logs = [];
    tab.on('console', (m) => logs.push(m.text()));
    tab.on('pageerror', (e) => logs.push(String(e)));
    try {
        await tab.goto(`http://${router.http}/${path}`);
        await tab.waitForFunction(() => window.result !== undefined, null, { timeout: 15_000 });
        return await tab.evaluate(() => window.result);
    } catch (error) {
        throw new Error(`${error.message}\npage log:\n${logs.join('\n')}`);
    } finally {
        await tab.close();
    }
}

function check(result) {
    assert.equal(result.failed, undefined, result.failed);
    assert.deepEqual(result.got, [
        { text: 'text from chromium', isJson: false, json: null, bytes: [...new TextEncoder().encode('text from chromium')] },
        { text: '{"from":"chromium"}', isJson: true, json: { from: 'chromium' }, bytes: [...new TextEncoder().encode('{"from":"chromium"}')] },
        { text: '\u0001\u0002\u0003', isJson: false, json: null, bytes: [1, 2, 3] },
    ]);
    assert.deepEqual(result.error, { code: 'no_such_service', isHyperStreamsError: true });
    assert.equal(result.state, 'closed');
}

test('in Chromium, with the wasm next to the module', async () => {
    check(await run('index.html'));
});

test('in Chromium, with the wasm elsewhere (wasmUrl)', async () => {
    check(await run('custom.html'));
});
