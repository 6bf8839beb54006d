// The factory dashboard: a micro-frontend on @hyperstreams/client, installed
// from npm the way a customer would. It subscribes to the simulator's
// telemetry, follows its alarm stream and calls its methods.
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { connect } from '@hyperstreams/client';
import { AlarmFeed } from './alarm-feed.js';
import { FactoryControls } from './factory-controls.js';
import { FactoryFloor } from './factory-floor.js';
import { describeError } from './format.js';
import { StatusBar } from './status-bar.js';
import { Toasts } from './toasts.js';

const TELEMETRY = 'factory.*.*.telemetry';
const ROUTER_URL = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
const RETRY_MS = 1000;

const status = new StatusBar(document.querySelector('.topbar'));
const toasts = new Toasts(document.querySelector('[data-testid="toasts"]'));
const alarms = new AlarmFeed(document.querySelector('[data-testid="alarm-feed"]'), {
  empty: document.querySelector('[data-testid="alarm-empty"]'),
  status: document.querySelector('[data-testid="alarm-status"]'),
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  status.setConnection('connecting');
  const client = await connectWithRetry();
  const floor = new FactoryFloor(
    document.querySelector('[data-testid="factory-floor"]'),
    new FactoryControls(client, toasts),
    { onCountChange: (count) => status.setMachines(count) },
  );

  client.on('state', (state) => {
    status.setConnection(state);
    if (state === 'connected') loadMachines(client, floor);
  });
  client.on('gap', (gap) => status.addGap(gap.missed ?? 1));
  client.on('error', (error) => toasts.show('error', 'Connection', describeError(error)));

  status.setConnection('connected');
  client.subscribe(TELEMETRY, (message) => {
    status.countMessage();
    const telemetry = message.json;
    if (telemetry?.line && telemetry?.machine) floor.receive(telemetry);
  });
  loadMachines(client, floor);
  followAlarms(client);
}

// The first connection: the page may load before the router is reachable.
async function connectWithRetry() {
  for (;;) {
    try {
      return await connect(ROUTER_URL, { name: 'factory-dashboard', reconnect: true });
    } catch (error) {
      status.setConnection('disconnected');
      await sleep(RETRY_MS);
      status.setConnection('connecting');
    }
  }
}

// Tiles for every machine the simulator knows, even idle ones that publish
// nothing yet. Telemetry creates tiles as well, so a failure here only
// delays machines that are silent.
async function loadMachines(client, floor) {
  try {
    const response = await client.request('factory', 'machines', {}, { timeoutMs: 5000 });
    const body = response.json;
    const machines = Array.isArray(body) ? body : (body?.machines ?? []);
    for (const machine of machines) {
      if (machine.line && machine.machine) floor.receive(machine);
    }
  } catch {
    // The simulator may start after the page: its telemetry will bring the tiles.
  }
}

// The alarm stream ends when the connection or the simulator goes away;
// it is opened again once the client is back.
async function followAlarms(client) {
  for (;;) {
    try {
      alarms.setStatus('live', 'ok');
      for await (const item of client.stream('factory', 'alarms', {})) alarms.add(item.json ?? {});
      alarms.setStatus('ended', 'warn');
    } catch (error) {
      alarms.setStatus(error?.code ?? 'interrupted', 'bad');
    }
    await sleep(RETRY_MS);
  }
}

main();
