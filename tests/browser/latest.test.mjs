// The dashboard shows the factory's state as it opens: its telemetry
// subscribe asks for each machine's latest value, which the router keeps in
// a namespace with "latest": true. The simulator ticks every thirty seconds
// and the page is opened just after a tick, so tiles that fill with no tick
// in between got the latest values, not the next tick. (How fast they fill is
// a benchmark's business, not this test's: on a loaded machine Chromium
// alone can take a second to load the page.) The simulator publishes its
// first tick as it starts, before it is connected, and the next one TICK_MS
// after that: the page has TICK_MS less the simulator's connect time. The
// test never waits for a tick to come round (the first comes at once, and
// stopProcess gives the sleeping simulator 5 s, then kills it), so a long
// TICK_MS costs nothing when it passes.
//
// Needs what dashboard.test.mjs needs (see run.sh).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { connect } from '@hyperstreams/client';
import { launchChromium } from './chromium.mjs';
import WebSocket from 'ws';
import { nativeBinary, repoRoot, startProcess, stopProcess } from './processes.mjs';

const WEB_DIST = join(repoRoot, 'web/dist');
const ROUTER_READY = /hyperstreams-router ready http=(\S+) ws=(\S+) backend=(\S+)/;
const TELEMETRY = 'factory.*.*.telemetry';
const MACHINES = 2 * 3;
const TICK_MS = 30_000;

let router;
let factory;
let observer;
let chromium;
let browser;
let httpAddress;
const ticks = [];  // when the observer saw each telemetry message

before(async () => {
  assert.ok(existsSync(join(WEB_DIST, 'index.html')), 'web/dist is missing: run `npm run build --prefix web`');
  router = await startProcess(
    nativeBinary('native/router/hyperstreams-router', 'HYPERSTREAMS_ROUTER'),
    ['--listen', '127.0.0.1:0', '--backend', 'tcp://127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--web', WEB_DIST,
      '--log-level', 'warn', '--channels-namespaces', '[{"pattern": "factory.>", "latest": true}]'],
    { ready: ROUTER_READY, name: 'router' },
  );
  let backendEndpoint;
  [, httpAddress, , backendEndpoint] = router.match;
  observer = await connect(`ws://${httpAddress}/ws`, { WebSocket, name: 'tick-observer', reconnect: false });
  await observer.subscribe(TELEMETRY, () => ticks.push(Date.now()));
  factory = await startProcess(
    nativeBinary('native/simulator/hyperstreams-factory', 'HYPERSTREAMS_FACTORY'),
    ['--router', backendEndpoint, '--lines', '2', '--machines', '3', '--rate', String(1000 / TICK_MS), '--jam-every', '0'],
    { ready: /hyperstreams-factory running/, name: 'factory' },
  );
  chromium = await launchChromium();
  browser = chromium.context;
});

after(async () => {
  await chromium?.close();
  await observer?.close();
  await stopProcess(factory);
  await stopProcess(router);
});

test('the dashboard shows every machine\'s state as it opens, before the next tick', async () => {
  // One tick has gone out: every machine has a latest value.
  const deadline = Date.now() + 2 * TICK_MS + 5000;
  while (ticks.length < MACHINES && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(ticks.length >= MACHINES, `the simulator's first tick: ${ticks.length} of ${MACHINES} machines`);
  const seenBefore = ticks.length;

  const page = browser.pages()[0] ?? (await browser.newPage());
  const opened = Date.now();
  await page.goto(`http://${httpAddress}/`);
  await page.waitForFunction(
    (count) => {
      const tiles = [...document.querySelectorAll('[data-testid="machine-tile"]')];
      return tiles.length === count &&
        tiles.every((t) => t.querySelector('[data-testid="machine-temperature"]').textContent !== '–');
    },
    MACHINES,
    { timeout: TICK_MS / 2, polling: 20 },
  );
  const shown = Date.now() - opened;
  assert.equal(ticks.length, seenBefore, `a tick came while the page opened (${shown} ms): the tiles may show it`);
});
