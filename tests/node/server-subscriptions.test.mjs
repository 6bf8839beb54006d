// Server-side subscriptions in the npm package against the real router: a
// token's channels become a 'subscribed' event whose Subscription takes the
// messages (onmessage), and a token refresh that withdraws one is an
// 'unsubscribed' event with its reason.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';

import { connect } from '../../dist/index.js';
import { startRouter } from './support/router.mjs';
import { waitFor } from './support/wait.mjs';

const secret = 'node-server-subscriptions-secret-0123456789';
const base64url = (text) => Buffer.from(text).toString('base64url');
function token(sub, hs) {
    const unsigned = `${base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${
        base64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 600, hs }))}`;
    return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

let router;
const clients = [];
before(async () => {
    router = await startRouter({ args: ['--auth-mode', 'tokens', '--auth-hs256-secret', secret] });
});
after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await router.stop();
});

test("a token's channels are a 'subscribed' Subscription whose onmessage gets their messages", async () => {
    const subscribed = [];
    const unsubscribed = [];
    const got = [];
    const alice = await connect(router.url, {
        WebSocket,
        token: token('alice', { subscribe: ['orders.>'], channels: ['orders.alice.>'] }),
        on: {
            subscribed: (sub) => {
                subscribed.push(sub);
                sub.onmessage = (m) => got.push([m.channel, m.text, m.subscription === sub]);
            },
            unsubscribed: (e) => unsubscribed.push(e),
        },
    });
    clients.push(alice);
    const shop = await connect(router.url, { WebSocket, token: token('shop', { publish: ['orders.>'] }) });
    clients.push(shop);

    await waitFor(() => subscribed.length === 1, 'the subscribed event');
    assert.equal(subscribed[0].pattern, 'orders.alice.>');
    await shop.publish('orders.bob.1', 'not hers', { ack: true });
    await shop.publish('orders.alice.1', 'hers', { ack: true });
    await waitFor(() => got.length === 1, 'the message');
    assert.deepEqual(got, [['orders.alice.1', 'hers', true]]);

    await alice.refreshToken(token('alice', { subscribe: ['news.>'] }));
    await waitFor(() => unsubscribed.length === 1, 'the unsubscribed event');
    assert.equal(unsubscribed[0].subscription, subscribed[0]);
    assert.equal(unsubscribed[0].reason, 'forbidden');
});
