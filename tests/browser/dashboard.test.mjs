// The factory dashboard end to end: the real router serving web/dist, the
// real simulator behind it, the page in headless Chromium (Debian's).
//
// Needs: the native build (router and simulator, see processes.mjs), the
// package built into dist/, and the page built into web/dist.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { connect } from '@hyperstreams/client';
import { launchChromium } from './chromium.mjs';
import WebSocket from 'ws';
import { nativeBinary, repoRoot, startProcess, stopProcess } from './processes.mjs';

const WEB_DIST = join(repoRoot, 'web/dist');
const SCREENSHOT = join(repoRoot, 'build/artifacts/dashboard.png');
const ROUTER_READY = /hyperstreams-router ready http=(\S+) ws=(\S+) backend=(\S+)/;

let router;
let factory;
let context;
let page;
let chromium;
let httpAddress;
let backendEndpoint;

// Console output of the page, tagged with the phase of the test it came in:
// while the router is down, Chromium itself logs the failed reconnects.
let phase = 'load';
const consoleProblems = [];
const pageErrors = [];

function startRouter(listen, backend) {
  return startProcess(
    nativeBinary('native/router/hyperstreams-router', 'HYPERSTREAMS_ROUTER'),
    ['--listen', listen, '--backend', backend, '--admin-listen', '127.0.0.1:0', '--web', WEB_DIST,
      '--log-level', 'warn', '--channels-namespaces', '[{"pattern": "factory.>", "latest": true}]'],
    { ready: ROUTER_READY, name: 'router' },
  );
}

before(async () => {
  assert.ok(existsSync(join(WEB_DIST, 'index.html')), 'web/dist is missing: run `npm run build --prefix web`');
  router = await startRouter('127.0.0.1:0', 'tcp://127.0.0.1:0');
  [, httpAddress, , backendEndpoint] = router.match;
  // No random jams: the test raises its alarms itself (factory/fault), and
  // the machine whose speed it sets must keep running.
  factory = await startProcess(
    nativeBinary('native/simulator/hyperstreams-factory', 'HYPERSTREAMS_FACTORY'),
    ['--router', backendEndpoint, '--jam-every', '0'],
    { ready: /hyperstreams-factory running/, name: 'factory' },
  );

  chromium = await launchChromium({ viewport: { width: 1440, height: 900 } });
  context = chromium.context;
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(10000);
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') {
      consoleProblems.push({ phase, type: message.type(), text: message.text() });
    }
  });
  page.on('pageerror', (error) => pageErrors.push(error.message));
});

after(async () => {
  await chromium?.close();
  await stopProcess(factory);
  await stopProcess(router);
});

// What the tiles show, as one comparable string.
function tileSnapshot() {
  return page.$$eval('[data-testid="machine-tile"]', (tiles) =>
    JSON.stringify(
      tiles.map((tile) =>
        ['machine-temperature', 'machine-speed', 'machine-output'].map(
          (field) => tile.querySelector(`[data-testid="${field}"]`).textContent,
        ),
      ),
    ),
  );
}

async function waitForValuesToChange(timeoutMs) {
  const before = await tileSnapshot();
  await page.waitForFunction(
    (previous) =>
      JSON.stringify(
        [...document.querySelectorAll('[data-testid="machine-tile"]')].map((tile) =>
          ['machine-temperature', 'machine-speed', 'machine-output'].map(
            (field) => tile.querySelector(`[data-testid="${field}"]`).textContent,
          ),
        ),
      ) !== previous,
    before,
    { timeout: timeoutMs, polling: 50 },
  );
}

// Runs `fn` with a Node client of its own: the simulator's view, not the page's.
async function withClient(fn) {
  const client = await connect(`ws://${httpAddress}/ws`, { WebSocket, name: 'browser-test', reconnect: false });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

function raiseAlarm(key) {
  const [line, machine] = key.split('.');
  return withClient((client) =>
    client.request('factory', 'fault', { line, machine, kind: 'jam' }, { timeoutMs: 5000 }),
  );
}

function alarmsReceived() {
  return page.getAttribute('[data-testid="alarm-feed"]', 'data-received').then(Number);
}

// Raises alarms on `key` until the page shows a new one. An alarm raised
// before the page's stream is open (just after a reconnect) never reaches
// it, and the simulator may still be registering: both are retried.
async function raiseAlarmUntilShown(key, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  const before = await alarmsReceived();
  for (;;) {
    try {
      await raiseAlarm(key);
    } catch (error) {
      if (!['no_such_service', 'no_instance_available'].includes(error.code)) throw error;
    }
    const shown = await page
      .waitForFunction(
        (count) => Number(document.querySelector('[data-testid="alarm-feed"]').dataset.received) > count,
        before,
        { timeout: 1500 },
      )
      .then(
        () => true,
        () => false,
      );
    if (shown) return;
    if (Date.now() > deadline) throw new Error(`no alarm of ${key} reached the page within ${timeoutMs} ms`);
  }
}

function connectionState() {
  return page.getAttribute('[data-testid="connection-state"]', 'data-state');
}

// Resolves once the header's connection pill says `state` (or, with
// `negate`, anything else).
function waitForConnectionState(state, { negate = false, timeoutMs }) {
  return page.waitForFunction(
    ([wanted, not]) =>
      (document.querySelector('[data-testid="connection-state"]').dataset.state === wanted) !== not,
    [state, negate],
    { timeout: timeoutMs },
  );
}

test('the page loads, connects and shows the machines without console errors', async () => {
  const response = await page.goto(`http://${httpAddress}/`);
  assert.equal(response.status(), 200);
  await page.locator('[data-testid="machine-tile"]').first().waitFor({ timeout: 15000 });
  assert.equal(await connectionState(), 'connected');
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(consoleProblems, []);
});

// The bounds are loose for a loaded CI machine (ASan router): they only end
// the wait when nothing flows; how fast values flow is a benchmark's business.
test('live values change and messages/s shows a rate', async () => {
  await waitForValuesToChange(10000);
  // The rate is the count over the last one-second window, shown once a
  // second: the window that saw the values change is shown at the next tick.
  const rateShown = () => page.textContent('[data-testid="messages-per-second"]');
  const positive = await page
    .waitForFunction(
      () => Number(document.querySelector('[data-testid="messages-per-second"]').textContent.replace(/,/g, '')) > 0,
      null,
      { timeout: 10000, polling: 50 },
    )
    .then(
      () => true,
      () => false,
    );
  assert.ok(positive, `messages/s still shows ${await rateShown()} 10 s after values changed`);
});

test('a speed set on a tile reaches the simulator and the tile shows it', async () => {
  const tile = page.locator('[data-testid="machine-tile"]').first();
  const key = await tile.getAttribute('data-machine');
  const [line, machine] = key.split('.');
  const shown = () => tile.locator('[data-testid="machine-speed"]').textContent();
  const current = Number((await shown()).replace(/,/g, ''));
  const target = current === 1370 ? 1290 : 1370;

  await tile.locator('[data-testid="machine-speed-input"]').fill(String(target));
  await tile.locator('[data-testid="machine-set-speed"]').click();
  await page.locator('[data-testid="toast"][data-kind="ok"]').first().waitFor();
  await page.waitForFunction(
    ([k, t]) =>
      document
        .querySelector(`[data-testid="machine-tile"][data-machine="${k}"] [data-testid="machine-speed"]`)
        .textContent.replace(/,/g, '') === String(t),
    [key, target],
    { timeout: 5000 },
  );

  const listed = await withClient(async (client) => {
    const response = await client.request('factory', 'machines', {}, { timeoutMs: 5000 });
    return response.json.machines.find((m) => m.line === line && m.machine === machine);
  });
  assert.ok(listed, `${key} missing from factory/machines`);
  assert.equal(listed.target_speed, target);
  assert.equal(listed.speed, target);
});

test('the alarm feed receives alarms from the simulator stream', async () => {
  const key = await page.locator('[data-testid="machine-tile"]').last().getAttribute('data-machine');
  await raiseAlarmUntilShown(key);
  const alarm = page.locator('[data-testid="alarm-item"]').first();
  assert.match(await alarm.textContent(), new RegExp(key.replace('.', ' · ')));
  assert.equal(await page.textContent('[data-testid="alarm-status"]'), 'live');
  await page.waitForFunction(
    (k) => document.querySelector(`[data-testid="machine-tile"][data-machine="${k}"]`).dataset.state === 'fault',
    key,
  );
});

test('start and stop through the page drive the machine', async () => {
  const tile = page.locator('[data-testid="machine-tile"]').last();
  const key = await tile.getAttribute('data-machine');
  const stateIs = (state) =>
    page.waitForFunction(
      ([k, st]) => document.querySelector(`[data-testid="machine-tile"][data-machine="${k}"]`).dataset.state === st,
      [key, state],
    );
  await tile.locator('[data-testid="machine-start"]').click();
  await stateIs('running');
  await tile.locator('[data-testid="machine-stop"]').click();
  await stateIs('stopped');
  await tile.locator('[data-testid="machine-start"]').click();
  await stateIs('running');
});

test('after a router restart the page reconnects by itself and values flow again', async () => {
  phase = 'restart';
  await stopProcess(router);
  await waitForConnectionState('connected', { negate: true, timeoutMs: 10000 });

  router = await startRouter(httpAddress, backendEndpoint);
  await waitForConnectionState('connected', { timeoutMs: 20000 });
  phase = 'reconnected';
  await waitForValuesToChange(10000);
  // The page opens its alarm stream again, once the simulator is back too.
  await raiseAlarmUntilShown(await page.locator('[data-testid="machine-tile"]').nth(1).getAttribute('data-machine'));

  await mkdir(join(repoRoot, 'build/artifacts'), { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
});

test('no console errors or warnings over the whole session', (t) => {
  assert.deepEqual(pageErrors, []);
  // While the router was down, the browser logs each refused reconnect.
  const refused = (p) => p.phase === 'restart' && /WebSocket connection to .* failed/.test(p.text);
  t.diagnostic(`${consoleProblems.filter(refused).length} refused reconnects logged while the router was down`);
  assert.deepEqual(
    consoleProblems.filter((p) => !refused(p)),
    [],
  );
});
