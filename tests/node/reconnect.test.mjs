// Reconnection against the real router: a cut connection resumes from the
// channel's history without gaps or duplicates; a draining router's redirect
// is followed. (A restarted router: restart.test.mjs.)
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import WebSocket from 'ws';

import { connect } from '../../dist/index.js';
import { startProxy } from './support/proxy.mjs';
import { startRouter } from './support/router.mjs';
import { nextEvent, waitFor } from './support/wait.mjs';

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

test('a cut connection reconnects and resumes from its last position: no gap, no duplicate', async () => {
    const router = await startRouter();
    cleanup.push(() => router.stop());
    const proxy = await startProxy(router.http);
    cleanup.push(() => proxy.close());

    const sub = await client(proxy.url);
    const pub = await client(router.url);
    const got = [];
    const gaps = [];
    sub.on('gap', (g) => gaps.push(g));
    await sub.subscribe('resume.exact', (m) => got.push(m));

    for (let i = 1; i <= 5; i++) await pub.publish('resume.exact', String(i), { ack: true });
    await waitFor(() => got.length === 5, 'five live messages');

    const states = [];
    sub.on('state', (e) => states.push(e.state));
    proxy.block();
    proxy.cut();
    await waitFor(() => states.includes('backoff'), 'the client noticing the cut');
    for (let i = 6; i <= 10; i++) await pub.publish('resume.exact', String(i), { ack: true });
    proxy.unblock();
    await waitFor(() => sub.state === 'ready' && got.length >= 10, 'the resumed messages');
    for (let i = 11; i <= 12; i++) await pub.publish('resume.exact', String(i), { ack: true });
    await waitFor(() => got.length >= 12, 'live messages after the resume');

    assert.deepEqual(sequenceOf(got), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.ok(got.slice(5, 10).every((m) => m.replayed), 'missed messages are marked replayed');
    assert.ok(got.slice(10).every((m) => !m.replayed));
    assert.deepEqual(gaps, []);
    assert.ok(states.includes('ready'));
});

test('a draining router redirects the client, which follows and resubscribes', async () => {
    const target = await startRouter();
    cleanup.push(() => target.stop());
    const draining = await startRouter({ args: ['--drain-redirect-url', target.url, '--drain-timeout-ms', '0'] });
    cleanup.push(() => draining.stop());

    const c = await client(draining.url);
    const got = [];
    await c.subscribe('redirect.here', (m) => got.push(m.text));
    const redirected = nextEvent(c, 'redirect');
    await draining.stop();
    const r = await redirected;
    assert.equal(r.url, target.url);
    await waitFor(() => c.state === 'ready', 'ready on the target router');

    const pub = await client(target.url);
    // The subscription is restored on the target (asynchronously, after the
    // welcome): publish there until a message arrives, within 10 s.
    let sent = 0;
    await waitFor(() => got.length > 0, 'a message published on the target router', 10_000,
        () => pub.publish('redirect.here', `after-${sent++}`, { ack: true }));
    assert.ok(got[0].startsWith('after-'), got[0]);
});
