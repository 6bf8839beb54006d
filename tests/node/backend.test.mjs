// The npm package and a real native backend (the README's hello_backend,
// built on the hyperstreams::backend library) through the real router:
// discovery, a request answered with JSON, a routing error, and messages a
// backend publishes. Deadlines, failing handlers and streams need a backend
// that offers them: pending/backend.test.mjs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';

import { HyperStreamsError, connect } from '../../dist/index.js';
import { nativeBinary, startRouter } from './support/router.mjs';
import { waitFor, within } from './support/wait.mjs';

let router;
let backend;
let client;
let registered = false;

before(async () => {
    router = await startRouter();
    backend = spawn(nativeBinary('native/examples/hello_backend', 'HYPERSTREAMS_HELLO_BACKEND'), [router.backend],
        { stdio: 'ignore' });
    client = await connect(router.url, { WebSocket });
    // Registered once discovery lists it.
    await waitFor(() => registered, 'the backend registering greeter', 10_000, async () => {
        registered = (await client.services()).some((s) => s.name === 'greeter');
    });
});

after(async () => {
    await client?.close();
    backend?.kill('SIGTERM');
    await router?.stop();
});

test('services() lists the backend with its instances and methods', async () => {
    const services = await within(client.services(), 'the service list');
    const greeter = services.find((s) => s.name === 'greeter');
    assert.deepEqual(greeter, { name: 'greeter', instances: 1, methods: [{ name: 'hello', kind: 'unary' }] });
});

test('request() gets the backend\'s JSON response', async () => {
    const reply = await within(client.request('greeter', 'hello', 'node', { timeoutMs: 5000 }), 'the response');
    assert.equal(reply.isJson, true);
    assert.deepEqual(reply.json, { greeting: 'hello, node' });
    assert.equal(reply.text, '{"greeting":"hello, node"}');
});

test('a method the backend does not offer fails with a routing error', async () => {
    await assert.rejects(within(client.request('greeter', 'goodbye', 'x', { timeoutMs: 5000 }), 'the error'),
        (e) => e instanceof HyperStreamsError && e.code === 'no_such_service' && e.operation === 'request');
});

test('messages the backend publishes reach a browser-side subscription', async () => {
    const ticks = [];
    const sub = await client.subscribe('greeter.ticks', (m) => ticks.push(m));
    await waitFor(() => ticks.length >= 2, 'two ticks', 5_000);
    assert.ok(ticks.every((m) => m.isJson && Number.isInteger(m.json.tick)));
    assert.equal(ticks[1].json.tick, ticks[0].json.tick + 1);
    assert.equal(ticks[1].seq, ticks[0].seq + 1);
    await sub.unsubscribe();
});
