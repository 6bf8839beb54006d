// No leak in the wasm engine or the JS layer: once warm, delivering messages
// does not grow wasm memory or the JS heap; closed clients free their
// engine, and so do clients dropped without close(). (The full million is
// `npm run bench:leak`, recorded in docs/BENCHMARKS.md.)
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { connect } from '../../dist/index.js';
import { loadCodec } from './support/codec.mjs';
import { fakeRouter } from './support/fake-socket.mjs';
import { describe, gc, runMessages } from './support/leak.mjs';

test('200,000 messages: every one delivered in order, memory flat', async () => {
    const r = await runMessages({ count: 200_000 });
    console.log(describe(r));
    assert.equal(r.received, r.sent);
    assert.equal(r.outOfOrder, 0);
    assert.equal(r.end.wasm, r.warm.wasm, 'wasm memory grew');
    assert.ok(r.end.heapUsed - r.warm.heapUsed < 1 << 20, 'JS heap grew by 1 MiB or more');
});

test('300 clients connected and closed: wasm memory flat', async () => {
    const codec = await loadCodec();
    const { FakeSocket } = fakeRouter(codec);
    const cycle = async () => {
        const client = await connect('ws://fake.invalid/ws', { WebSocket: FakeSocket });
        await client.subscribe('a.b', () => {});
        await client.close();
        assert.equal(client.state, 'closed');
    };
    const live = codec.liveClients();
    for (let i = 0; i < 50; i++) await cycle();
    const warm = codec.memoryBytes();
    for (let i = 0; i < 300; i++) await cycle();
    assert.equal(codec.memoryBytes(), warm);
    assert.equal(codec.liveClients(), live);
});

test('clients dropped without close() are freed by the FinalizationRegistry', async () => {
    const codec = await loadCodec();
    const { FakeSocket, sockets } = fakeRouter(codec);
    const before = codec.liveClients();
    const count = 20;
    // Bytes that are no frame: the engine fails the connection and stops
    // (no socket, no timer), the state in which nothing else holds a client.
    const garbage = new Uint8Array([0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const failed = [];
    // In a function of its own, so that no frame of this test holds a client.
    const dropFailedClient = async () => {
        const client = await connect('ws://fake.invalid/ws', { WebSocket: FakeSocket });
        client.on('state', (e) => failed.push(e.state));
        sockets.at(-1).deliver(garbage);
    };
    for (let i = 0; i < count; i++) await dropFailedClient();
    assert.equal(failed.filter((s) => s === 'failed').length, count);
    assert.equal(codec.liveClients(), before + count);
    await new Promise((resolve) => setTimeout(resolve, 50));  // the sockets' close events
    sockets.length = 0;
    for (let i = 0; i < 100 && codec.liveClients() > before; i++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(codec.liveClients(), before);
});
