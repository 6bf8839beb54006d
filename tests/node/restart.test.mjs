// A restarted router (killed, started again on the same port, its history
// gone): the client reconnects, resubscribes exact and wildcard
// subscriptions, and its resume replays the new epoch's history once.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import WebSocket from 'ws';

import { connect } from '../../dist/index.js';
import { startRouter } from './support/router.mjs';
import { waitFor } from './support/wait.mjs';

const cleanup = [];
after(async () => {
    for (const fn of cleanup.reverse()) await fn();
});

async function client(url, options = {}) {
    const c = await connect(url, { WebSocket, reconnect: { baseMs: 50, maxMs: 200 }, ...options });
    cleanup.push(() => c.close());
    return c;
}

function sequenceOf(messages) {
    return messages.map((m) => Number(m.text));
}

test('a restarted router: the client reconnects, resubscribes and gets the new epoch once', async () => {
    let router = await startRouter();
    const address = router.http;
    cleanup.push(() => router.stop());

    const sub = await client(router.url);
    const got = [];
    const gaps = [];
    sub.on('gap', (g) => gaps.push(g));
    await sub.subscribe('restart.exact', (m) => got.push(m));
    const wildcard = [];
    await sub.subscribe('restart.>', (m) => wildcard.push(m));

    const pub1 = await connect(router.url, { WebSocket, reconnect: false });
    for (let i = 1; i <= 3; i++) await pub1.publish('restart.exact', String(i), { ack: true });
    await waitFor(() => got.length === 3, 'messages before the restart');
    await pub1.close();
    const oldEpoch = got[0].epoch;

    await router.kill();
    router = await startRouter({ listen: address });
    const pub2 = await connect(router.url, { WebSocket, reconnect: false });
    cleanup.push(() => pub2.close());
    // Published on the new router while the subscriber may still be away:
    // the resume replays them from the new epoch's history.
    for (let i = 4; i <= 6; i++) await pub2.publish('restart.exact', String(i), { ack: true });
    await waitFor(() => sub.state === 'ready' && got.length >= 6, 'messages after the restart');
    await pub2.publish('restart.exact', '7', { ack: true });
    await waitFor(() => got.length >= 7 && wildcard.length >= 4, 'a live message after the restart');

    assert.deepEqual(sequenceOf(got), [1, 2, 3, 4, 5, 6, 7]);
    assert.notEqual(got[3].epoch, oldEpoch, 'the restarted router has a new epoch');
    assert.deepEqual(got.slice(3).map((m) => m.seq), [1, 2, 3, 4]);
    assert.ok(gaps.some((g) => g.channel === 'restart.exact' && g.epochChanged), 'the epoch change is reported');
    assert.ok(wildcard.map((m) => Number(m.text)).includes(7), 'the wildcard subscription was restored');
});
