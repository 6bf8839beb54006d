// The factory dashboard: a micro-frontend on @hyperstreams/client, installed
// from npm the way a customer would. It subscribes to the simulator's
// telemetry, follows its alarm stream and calls its methods.
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { connect } from '@hyperstreams/client';
import { AlarmFeed } from './alarm-feed.js';
import { FactoryControls } from './factory-controls.js';
import { FactoryFloor } from './factory-floor.js';
import { describeConnection, describeError } from './format.js';
import { StatusBar } from './status-bar.js';
import { Toasts } from './toasts.js';

const TELEMETRY = 'factory.*.*.telemetry';
const ROUTER_URL = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
const RETRY_MS = 1000;

// Why the alarm stream stopped, as an operator reads it.
const STREAM_TROUBLE = {
  no_such_service: 'simulator offline',
  no_instance_available: 'simulator offline',
  backend_gone: 'simulator offline',
  connection_lost: 'reconnecting',
  not_connected: 'reconnecting',
  going_away: 'reconnecting',
};

const status = new StatusBar(document.querySelector('.topbar'));
const toasts = new Toasts(document.querySelector('[data-testid="toasts"]'));
const alarms = new AlarmFeed(document.querySelector('[data-testid="alarm-feed"]'), {
  empty: document.querySelector('[data-testid="alarm-empty"]'),
  status: document.querySelector('[data-testid="alarm-status"]'),
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const client = await connectOnce();
  const floor = new FactoryFloor(
    document.querySelector('[data-testid="factory-floor"]'),
    new FactoryControls(client, toasts),
    { onCountChange: (count) => status.setMachines(count) },
  );

  client.on('state', ({ state }) => {
    if (state === 'ready') loadMachines(client, floor);
  });
  client.on('gap', (gap) => status.addGap(gap));
  // Connection trouble shows in the header; anything else is worth a toast.
  client.on('error', (error) => {
    if (error?.operation !== 'connection') toasts.show('error', 'HyperStreams', describeError(error));
  });

  await subscribeTelemetry(client, (message) => {
    status.countMessage();
    const telemetry = message.isJson ? message.json : null;
    if (telemetry?.line && telemetry?.machine) floor.receive(telemetry);
  });
  loadMachines(client, floor);
  followAlarms(client);
}

// With each machine's last telemetry first, so the tiles show the factory's
// state as the page opens rather than at the simulator's next tick; a router
// whose namespaces do not keep it gets the plain subscribe.
async function subscribeTelemetry(client, handler) {
  try {
    await client.subscribe(TELEMETRY, handler, { latest: true });
  } catch (error) {
    if (error?.code !== 'not_enabled') throw error;
    await client.subscribe(TELEMETRY, handler);
  }
}

// The client retries by itself until the first connection is up, and the
// header follows every attempt, with why one failed; this loop only covers
// what the client gives up on (the wasm file failing to load, for one).
async function connectOnce() {
  status.setConnection('connecting');
  for (;;) {
    try {
      return await connect(ROUTER_URL, {
        name: 'factory-dashboard',
        reconnect: true,
        on: { state: (event) => status.setConnection(event.state, describeConnection(event)) },
      });
    } catch (error) {
      status.setConnection('failed', describeError(error));
      await sleep(RETRY_MS);
    }
  }
}

// A tile for every machine the simulator knows, before its first telemetry.
// Telemetry creates tiles as well, so a failure here only delays them.
async function loadMachines(client, floor) {
  try {
    const response = await client.request('factory', 'machines', {}, { timeoutMs: 5000 });
    for (const machine of response.json.machines ?? []) floor.tile(machine);
  } catch {
    // No simulator yet: its telemetry will bring the tiles when it comes.
  }
}

// The alarm stream ends when the connection or the simulator goes away; it
// is opened again once the client is back.
async function followAlarms(client) {
  for (;;) {
    try {
      alarms.setStatus('live', 'ok');
      for await (const item of client.stream('factory', 'alarms', {})) alarms.add(item.json);
      alarms.setStatus('ended', 'warn');
    } catch (error) {
      alarms.setStatus(STREAM_TROUBLE[error?.code] ?? describeError(error), 'bad');
    }
    await sleep(RETRY_MS);
    await whenReady(client);
  }
}

function whenReady(client) {
  if (client.state === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const off = client.on('state', ({ state }) => {
      if (state !== 'ready') return;
      off();
      resolve();
    });
  });
}

main();
