// permessage-deflate between the npm package in Node (over the `ws`
// package, which offers the extension by default) and a router that
// accepts it (ws.permessage_deflate.enabled): negotiated, telemetry arrives
// intact and in far fewer bytes than it holds; and not negotiated with a
// router left at its default.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import WebSocket from 'ws';

import { connect } from '../../dist/index.js';
import { startRouter } from './support/router.mjs';
import { waitFor } from './support/wait.mjs';

const routers = [];
const clients = [];

after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(routers.map((r) => r.stop()));
});

// `ws`'s WebSocket, keeping every socket the package opens.
function recordingWebSocket(sockets) {
    return class extends WebSocket {
        constructor(...args) {
            super(...args);
            sockets.push(this);
        }
    };
}

async function client(router, sockets) {
    const c = await connect(router.url, { WebSocket: recordingWebSocket(sockets), name: 'deflate-test' });
    clients.push(c);
    return c;
}

// Readings of the factory simulator's telemetry, as one JSON document.
function telemetry(n) {
    const readings = [];
    for (let i = 0; i < n; i++) {
        readings.push({ line: 'L1', machine: `M${i % 8}`, state: 'running', temperature: 61 + (i % 10) / 10,
            speed: 1200, target_speed: 1200, output: 1000 + i, ts: 1764892800000 + i * 100 });
    }
    return readings;
}

// What a subscriber's socket reads while one `payload` is published to it.
async function bytesReadFor(router, payload) {
    const subSockets = [];
    const sub = await client(router, subSockets);
    const pub = await client(router, []);
    const got = [];
    await sub.subscribe('plant.telemetry', (m) => got.push(m));
    const socket = subSockets.at(-1);
    const before = socket._socket.bytesRead;
    await pub.publish('plant.telemetry', payload);
    await waitFor(() => got.length === 1, 'the telemetry');
    assert.deepEqual(got[0].json, payload);
    return { socket, read: socket._socket.bytesRead - before };
}

test('with the router accepting it, the package in Node negotiates permessage-deflate and reads compressed telemetry', async () => {
    const router = await startRouter({ args: ['--ws-permessage-deflate-enabled', 'true'] });
    routers.push(router);
    const payload = telemetry(200);
    const size = Buffer.byteLength(JSON.stringify(payload));
    const { socket, read } = await bytesReadFor(router, payload);
    assert.match(socket.extensions, /^permessage-deflate/);
    assert.ok(read < size / 4, `${read} bytes read for ${size} bytes of telemetry`);
});

test('with the router at its default, permessage-deflate is not negotiated', async () => {
    const router = await startRouter();
    routers.push(router);
    const payload = telemetry(200);
    const size = Buffer.byteLength(JSON.stringify(payload));
    const { socket, read } = await bytesReadFor(router, payload);
    assert.equal(socket.extensions, '');
    assert.ok(read > size, `${read} bytes read for ${size} bytes of telemetry`);
});
