// connect() given the routers of a cluster, against real routers: a router
// that is down costs one attempt, not the backoff schedule; a router that
// goes away (killed, or drained without a redirect) hands the client to the
// next router of its list, where it subscribes again. Two independent
// routers stand in for a cluster: what moves here is the connection.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import WebSocket from 'ws';

import { HyperStreamsError, connect } from '../../dist/index.js';
import { closedPort, startRouter } from './support/router.mjs';
import { waitFor, within } from './support/wait.mjs';

const cleanup = [];
after(async () => {
    for (const fn of cleanup.reverse()) await fn();
});

async function router(options) {
    const r = await startRouter(options);
    cleanup.push(() => r.stop());
    return r;
}

// connect() to `urls` with a record of its state events from the first attempt on.
async function client(urls, options = {}) {
    const states = [];
    const c = await within(connect(urls, { WebSocket, on: { state: (e) => states.push(e) }, ...options }),
        'connect()', 10_000);
    cleanup.push(() => c.close());
    return { c, states };
}

// Publishes on `url` until `got` has a message: the subscriber's subscription
// is restored asynchronously after its welcome.
async function deliveredThrough(url, channel, got) {
    const pub = await connect(url, { WebSocket });
    cleanup.push(() => pub.close());
    for (let i = 0; i < 100 && got.length === 0; i++) {
        await pub.publish(channel, `after-${i}`, { ack: true });
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return got.length > 0;
}

test('a router that is down costs one refused attempt: the client goes on to the next one at once', async () => {
    const down = `ws://127.0.0.1:${await closedPort()}/ws`;
    const live = await router();
    const { c, states } = await client([down, live.url]);
    assert.equal(c.state, 'ready');
    const attempts = states.filter((e) => e.state === 'connecting').map((e) => e.url);
    assert.deepEqual(attempts, [down, live.url]);
    const failed = states.find((e) => e.state === 'backoff');
    assert.equal(failed.reason, 'connection_refused');
    assert.equal(failed.url, live.url, 'the failed attempt names where the next one goes');
    assert.ok(failed.retryInMs <= 250, `a short pause, not the backoff: ${failed.retryInMs} ms`);
    assert.equal(states.at(-1).url, live.url);
});

test('without reconnect, connect() tries each router of the list once', async () => {
    const down = `ws://127.0.0.1:${await closedPort()}/ws`;
    const live = await router();
    const { c } = await client([down, live.url], { reconnect: false });
    assert.equal(c.state, 'ready');

    const other = `ws://127.0.0.1:${await closedPort()}/ws`;
    const states = [];
    await assert.rejects(connect([down, other], { WebSocket, reconnect: false, on: { state: (e) => states.push(e) } }),
        (e) => e instanceof HyperStreamsError && e.code === 'connection_refused');
    assert.deepEqual(states.filter((e) => e.state === 'connecting').map((e) => e.url), [down, other]);
});

test('a killed router hands the client to the next router of its list, a drained one to the one after', async () => {
    const a = await router();
    const b = await router();
    const { c, states } = await client([a.url, b.url]);
    assert.equal(states.at(-1).url, a.url);
    const got = [];
    await c.subscribe('routers.moved', (m) => got.push(m.text));

    states.length = 0;
    await a.kill();  // SIGKILL: the connection just drops
    await waitFor(() => c.state === 'ready' && states.at(-1)?.url === b.url, 'ready on the second router', 5_000);
    const lost = states.find((e) => e.state === 'backoff');
    assert.equal(lost.url, b.url);
    assert.ok(lost.retryInMs <= 250, `a short pause, not the backoff: ${lost.retryInMs} ms`);
    assert.ok(await deliveredThrough(b.url, 'routers.moved', got), 'subscribed again on the second router');

    // The first comes back on its port; the second drains (SIGTERM, no
    // redirect configured: a goodbye going_away): round robin, back to the first.
    const again = await router({ listen: a.http });
    got.length = 0;
    states.length = 0;
    await b.stop();
    await waitFor(() => c.state === 'ready' && states.at(-1)?.url === a.url, 'ready on the first router again', 5_000);
    assert.equal(states.find((e) => e.state === 'backoff').reason, 'going_away');
    assert.ok(await deliveredThrough(again.url, 'routers.moved', got), 'subscribed again on the first router');
});
