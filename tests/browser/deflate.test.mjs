// The dashboard with permessage-deflate on (ws.permessage_deflate.enabled):
// Chromium offers the extension by itself, the router accepts it, and the
// page shows the simulator's live telemetry over the compressed connection.
//
// Needs what dashboard.test.mjs needs (see run.sh).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchChromium } from './chromium.mjs';
import { nativeBinary, repoRoot, startProcess, stopProcess } from './processes.mjs';

const WEB_DIST = join(repoRoot, 'web/dist');
const ROUTER_READY = /hyperstreams-router ready http=(\S+) ws=(\S+) backend=(\S+)/;
const MACHINES = 2 * 3;

let router;
let factory;
let chromium;
let browser;
let httpAddress;

before(async () => {
  assert.ok(existsSync(join(WEB_DIST, 'index.html')), 'web/dist is missing: run `npm run build --prefix web`');
  router = await startProcess(
    nativeBinary('native/router/hyperstreams-router', 'HYPERSTREAMS_ROUTER'),
    ['--listen', '127.0.0.1:0', '--backend', 'tcp://127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--web', WEB_DIST,
      '--log-level', 'warn', '--channels-namespaces', '[{"pattern": "factory.>", "latest": true}]',
      '--ws-permessage-deflate-enabled', 'true'],
    { ready: ROUTER_READY, name: 'router' },
  );
  let backendEndpoint;
  [, httpAddress, , backendEndpoint] = router.match;
  factory = await startProcess(
    nativeBinary('native/simulator/hyperstreams-factory', 'HYPERSTREAMS_FACTORY'),
    ['--router', backendEndpoint, '--lines', '2', '--machines', '3', '--rate', '10', '--jam-every', '0'],
    { ready: /hyperstreams-factory running/, name: 'factory' },
  );
  chromium = await launchChromium();
  browser = chromium.context;
});

after(async () => {
  await chromium?.close();
  await stopProcess(factory);
  await stopProcess(router);
});

test('with permessage-deflate on, the dashboard\'s WebSocket negotiates it and live values flow', async () => {
  const page = browser.pages()[0] ?? (await browser.newPage());
  // Keeps every WebSocket the page opens, to read what it negotiated.
  await page.addInitScript(() => {
    const Native = window.WebSocket;
    window.__sockets = [];
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        window.__sockets.push(this);
      }
    };
  });
  await page.goto(`http://${httpAddress}/`);
  const temperatures = () => page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="machine-temperature"]')].map((t) => t.textContent).join('|'));
  await page.waitForFunction(
    (count) => {
      const tiles = [...document.querySelectorAll('[data-testid="machine-tile"]')];
      return tiles.length === count &&
        tiles.every((t) => t.querySelector('[data-testid="machine-temperature"]').textContent !== '–');
    },
    MACHINES,
    { timeout: 10_000 },
  );
  const first = await temperatures();
  await page.waitForFunction((before) =>
    [...document.querySelectorAll('[data-testid="machine-temperature"]')].map((t) => t.textContent).join('|') !== before,
  first, { timeout: 10_000 });

  const extensions = await page.evaluate(() =>
    window.__sockets.filter((s) => s.readyState === WebSocket.OPEN).map((s) => s.extensions));
  assert.ok(extensions.length >= 1, 'the dashboard has an open WebSocket');
  for (const e of extensions) assert.match(e, /^permessage-deflate/);
});
