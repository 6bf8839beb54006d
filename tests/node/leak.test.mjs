// No leak in the wasm engine or the JS layer: once warm, delivering messages
// does not grow wasm memory or the JS heap. (The full million is
// `npm run bench:leak`, recorded in docs/BENCHMARKS.md.)
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { connect } from '../../dist/index.js';
import { loadCodec } from '../../dist/codec.js';
import { fakeRouter } from './support/fake-socket.mjs';
import { describe, runMessages } from './support/leak.mjs';

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
    for (let i = 0; i < 50; i++) await cycle();
    const warm = codec.memoryBytes();
    for (let i = 0; i < 300; i++) await cycle();
    assert.equal(codec.memoryBytes(), warm);
});
