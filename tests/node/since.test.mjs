// subscribe(..., { since }): a client that kept the position of the last
// message it handled (e.g. across a page reload) gets what it missed from
// the channel's history, replayed once, then live messages.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';

import { connect } from '../../dist/index.js';
import { startRouter } from './support/router.mjs';
import { waitFor } from './support/wait.mjs';

let router;
const clients = [];
before(async () => { router = await startRouter(); });
after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await router.stop();
});

async function client() {
    const c = await connect(router.url, { WebSocket });
    clients.push(c);
    return c;
}

test('since replays the history after a position, then goes live', async () => {
    const pub = await client();
    const positions = [];
    for (let i = 1; i <= 6; i++) positions.push(await pub.publish('since.demo', String(i), { ack: true }));

    const sub = await client();
    const got = [];
    await sub.subscribe('since.demo', (m) => got.push(m), { since: positions[2] });
    await waitFor(() => got.length === 3, 'the replayed messages');
    await pub.publish('since.demo', '7', { ack: true });
    await waitFor(() => got.length === 4, 'the live message');
    assert.deepEqual(got.map((m) => m.text), ['4', '5', '6', '7']);
    assert.deepEqual(got.map((m) => m.replayed), [true, true, true, false]);
    assert.deepEqual(got.map((m) => m.seq), [4, 5, 6, 7].map((n) => positions[0].seq + n - 1));
});

test('since is refused for wildcard patterns and malformed positions', async () => {
    const c = await client();
    await assert.rejects(c.subscribe('since.*', () => {}, { since: { epoch: 1, seq: 1 } }),
        (e) => e.code === 'invalid_argument');
    await assert.rejects(c.subscribe('since.x', () => {}, { since: { seq: 1 } }), TypeError);
});
