// What a page can tell its user while connect() is still trying: every
// failed attempt is a 'state' event (backoff, with the reason, the
// platform's words and the delay to the next attempt) that listeners given
// to connect() hear from the first attempt on, against a closed port, a
// wrong path on a real router and a server that never answers; connecting
// goes on until it succeeds, or until the page gives up (signal).
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, test } from 'node:test';
import WebSocket from 'ws';

import { HyperStreamsError, connect } from '../../dist/index.js';
import { closedPort, startRouter } from './support/router.mjs';
import { waitFor, within } from './support/wait.mjs';

const routers = [];
const servers = [];

after(async () => {
    await Promise.all(routers.map((r) => r.stop()));
    for (const s of servers) s.close();
});

// connect() with listeners from the start; `states` fills as they come.
function connecting(url, options = {}) {
    const states = [];
    const controller = new AbortController();
    const client = connect(url, {
        WebSocket,
        signal: controller.signal,
        on: { state: (e) => states.push(e) },
        ...options,
    });
    client.catch(() => {});  // given up by the test: rejected with the abort's reason
    return { client, states, giveUp: () => controller.abort() };
}

const firstBackoff = (states) => states.find((e) => e.state === 'backoff');

test('against a closed port, the first attempt reports connection_refused and the next attempt\'s delay', async () => {
    const port = await closedPort();
    const { client, states, giveUp } = connecting(`ws://127.0.0.1:${port}/ws`);
    await waitFor(() => firstBackoff(states), 'the first failed attempt');
    const failed = firstBackoff(states);
    assert.equal(states[0].state, 'connecting', 'the listener hears the first attempt begin');
    assert.equal(failed.previous, 'connecting');
    assert.equal(failed.reason, 'connection_refused');
    assert.equal(failed.detail, `nothing accepts connections on 127.0.0.1:${port}`);
    assert.ok(Number.isInteger(failed.retryInMs) && failed.retryInMs >= 0 && failed.retryInMs <= 250,
        `retryInMs ${failed.retryInMs}`);
    // It goes on trying.
    await waitFor(() => states.filter((e) => e.state === 'backoff').length >= 2, 'a second attempt', 5_000);
    giveUp();
    await assert.rejects(client, (e) => e.name === 'AbortError');
});

test('a wrong path on a real router reports the HTTP status of the refused upgrade', async () => {
    const router = await startRouter();
    routers.push(router);
    const { client, states, giveUp } = connecting(`ws://${router.http}/nope`);
    await waitFor(() => firstBackoff(states), 'the first failed attempt');
    const failed = firstBackoff(states);
    assert.equal(failed.reason, 'upgrade_refused');
    assert.equal(failed.detail, `HTTP 404 from ${router.http}/nope instead of a WebSocket upgrade`);
    assert.equal(typeof failed.retryInMs, 'number');
    giveUp();
    await assert.rejects(client, (e) => e.name === 'AbortError');
});

test('a server that never answers is a handshake_timeout', async () => {
    const silent = createServer(() => {});  // accepts, says nothing
    servers.push(silent);
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { client, states, giveUp } = connecting(`ws://127.0.0.1:${silent.address().port}/ws`,
        { handshakeTimeoutMs: 300 });
    await waitFor(() => firstBackoff(states), 'the attempt to time out', 5_000);
    assert.equal(firstBackoff(states).reason, 'handshake_timeout');
    giveUp();
    await assert.rejects(client, (e) => e.name === 'AbortError');
});

test('without reconnect, connect() rejects with the reason of the failed attempt', async () => {
    const port = await closedPort();
    await assert.rejects(connect(`ws://127.0.0.1:${port}/ws`, { WebSocket, reconnect: false }),
        (e) => e instanceof HyperStreamsError && e.code === 'connection_refused' && e.operation === 'connection' &&
            e.message === `connection_refused: nothing accepts connections on 127.0.0.1:${port}`);
});

test('connecting goes on after failed attempts and resolves once the router is there', async () => {
    const port = await closedPort();
    const { client, states } = connecting(`ws://127.0.0.1:${port}/ws`, { reconnect: { baseMs: 50, maxMs: 200 } });
    await waitFor(() => firstBackoff(states), 'the first failed attempt');
    const router = await startRouter({ listen: `127.0.0.1:${port}` });
    routers.push(router);
    const ready = await within(client, 'connect() to resolve', 10_000);
    assert.equal(ready.state, 'ready');
    assert.equal(states.at(-1).state, 'ready');
    await ready.close();
});

test('a signal aborted before connect() rejects at once and starts nothing', async () => {
    const states = [];
    await assert.rejects(
        connect('ws://127.0.0.1:1/ws', { WebSocket, signal: AbortSignal.abort(), on: { state: (e) => states.push(e) } }),
        (e) => e.name === 'AbortError');
    assert.deepEqual(states.map((e) => e.state), ['closed'], 'no attempt began');
});

test('a listener in on that is not a function is a TypeError', async () => {
    await assert.rejects(connect('ws://127.0.0.1:1/ws', { WebSocket, on: { state: 'nope' } }), TypeError);
});
