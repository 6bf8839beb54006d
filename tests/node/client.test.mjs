// The npm package against the real router: connect, pub/sub with every kind
// of payload, acknowledgements, direct messages, discovery, token refresh,
// errors and close. (Requests and streams need a backend: pending/.)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';

import { loadCodec } from './support/codec.mjs';
import { HyperStreamsError, connect } from '../../dist/index.js';
import { startRouter } from './support/router.mjs';
import { nextEvent, waitFor, within } from './support/wait.mjs';

// Before any connect(): the clients of this file run on the test build of
// the module, whose count of live engines the codec reads.
const codec = await loadCodec();
let router;
const clients = [];

async function client(options = {}) {
    const c = await connect(router.url, { WebSocket, name: 'node-test', ...options });
    clients.push(c);
    return c;
}

before(async () => {
    router = await startRouter();
});

after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await router.stop();
});

test('connect resolves with a ready client that has a session id', async () => {
    const c = await client({ token: 'any-token' });
    assert.equal(c.state, 'ready');
    assert.match(c.sessionId, /\S/);
});

test('binary, text and JSON payloads arrive as bytes, text and JSON', async () => {
    const sub = await client();
    const pub = await client();
    const got = [];
    await sub.subscribe('test.payloads', (m) => got.push(m));

    const binary = new Uint8Array([0, 1, 2, 250, 255]);
    await pub.publish('test.payloads', binary);
    await pub.publish('test.payloads', 'héllo wörld');
    await pub.publish('test.payloads', { temperature: 21.5, tags: ['a', 'b'], ok: true });
    await waitFor(() => got.length === 3, 'three messages');

    assert.deepEqual([...got[0].bytes], [...binary]);
    assert.equal(got[0].isJson, false);
    assert.equal(got[1].text, 'héllo wörld');
    assert.equal(got[1].isJson, false);
    assert.deepEqual(got[2].json, { temperature: 21.5, tags: ['a', 'b'], ok: true });
    assert.equal(got[2].isJson, true);
    for (const m of got) {
        assert.equal(m.channel, 'test.payloads');
        assert.equal(m.replayed, false);
    }
    assert.deepEqual(got.map((m) => m.seq), [got[0].seq, got[0].seq + 1, got[0].seq + 2]);
});

test('wildcard patterns match one token (*) and the rest (>)', async () => {
    const sub = await client();
    const pub = await client();
    const star = [];
    const rest = [];
    await sub.subscribe('wild.*.temp', (m) => star.push(m.channel));
    await sub.subscribe('wild.>', (m) => rest.push(m.channel));
    for (const ch of ['wild.a.temp', 'wild.b.temp', 'wild.a.b.temp', 'wild.c.pressure']) await pub.publish(ch, ch);
    await waitFor(() => rest.length === 4, 'four messages on wild.>');
    assert.deepEqual(star, ['wild.a.temp', 'wild.b.temp']);
    assert.deepEqual(rest, ['wild.a.temp', 'wild.b.temp', 'wild.a.b.temp', 'wild.c.pressure']);
});

test('publish with ack resolves with the message position', async () => {
    const pub = await client();
    const first = await pub.publish('test.acked', 'one', { ack: true });
    const second = await pub.publish('test.acked', 'two', { ack: true });
    assert.ok(first.epoch > 0);
    assert.equal(second.epoch, first.epoch);
    assert.equal(second.seq, first.seq + 1);
    assert.equal(await pub.publish('test.acked', 'three'), undefined);
});

test('publish with a key: a repeat resolves with the first position, undelivered; another payload is key_reused', async () => {
    const sub = await client();
    const pub = await client();
    const got = [];
    await sub.subscribe('test.keyed', (m) => got.push(m.text));
    const first = await pub.publish('test.keyed', 'qty 3', { ack: true, key: 'order-17', ttlS: 60 });
    assert.deepEqual(await pub.publish('test.keyed', 'qty 3', { ack: true, key: 'order-17', ttlS: 60 }), first);
    await assert.rejects(pub.publish('test.keyed', 'qty 4', { ack: true, key: 'order-17' }),
        (e) => e instanceof HyperStreamsError && e.code === 'key_reused' && e.codeNumber === 214);
    const marker = await pub.publish('test.keyed', 'marker', { ack: true, key: '' });
    assert.equal(marker.seq, first.seq + 1, 'the repeat took no position; an empty key is none');
    await waitFor(() => got.includes('marker'), 'the marker');
    assert.deepEqual(got, ['qty 3', 'marker']);
});

test('publish options the engine refuses reject at once with invalid_argument', async () => {
    const c = await client();
    for (const options of [{ ttlS: 0 }, { ttlS: 1.5 }, { ttlS: -1 }, { ttlS: 2 ** 32 }, { ttlS: 'soon' },
        { key: 'two words' }, { key: 'k'.repeat(256) }, { key: 'clé' }]) {
        await assert.rejects(c.publish('test.keyed', 'x', options),
            (e) => e.code === 'invalid_argument', JSON.stringify(options));
    }
});

test('unsubscribe stops delivery', async () => {
    const sub = await client();
    const pub = await client();
    const got = [];
    const s = await sub.subscribe('test.unsub', (m) => got.push(m.text));
    await pub.publish('test.unsub', 'before', { ack: true });
    await waitFor(() => got.length === 1, 'the first message');
    await s.unsubscribe();
    await pub.publish('test.unsub', 'after', { ack: true });
    const marker = [];
    await sub.subscribe('test.unsub.marker', (m) => marker.push(m));
    await pub.publish('test.unsub.marker', 'x');
    await waitFor(() => marker.length === 1, 'the marker');
    assert.deepEqual(got, ['before']);
});

test('send() reaches another client by its session id, with JSON', async () => {
    const a = await client();
    const b = await client();
    const received = nextEvent(b, 'direct');
    assert.equal(await a.send(b.sessionId, { hello: 'b' }), undefined);
    const m = await received;
    assert.deepEqual(m.json, { hello: 'b' });
    assert.equal(m.from, a.sessionId);
});

test('send() with ack resolves once the router delivered the message', async () => {
    const a = await client();
    const b = await client();
    const received = nextEvent(b, 'direct');
    await within(a.send(b.sessionId, new Uint8Array([7, 8]), { ack: true }), 'the ack of the direct message');
    const m = await received;
    assert.deepEqual([...m.bytes], [7, 8]);
    assert.equal(m.isJson, false);
});

test('broadcast() reaches the other clients, not the sender', async () => {
    const a = await client();
    const b = await client();
    const ownCopies = [];
    a.on('broadcast', (m) => ownCopies.push(m));
    const received = nextEvent(b, 'broadcast', (m) => m.from === a.sessionId);
    await within(a.broadcast({ all: true }, { ack: true }), 'the ack of the broadcast');
    assert.deepEqual((await received).json, { all: true });
    assert.deepEqual(ownCopies, []);
});

test('send() to an unknown address fails with no_such_address when acknowledged', async () => {
    const a = await client();
    await assert.rejects(within(a.send('no-such-session', 'x', { ack: true }), 'the error'),
        (e) => e instanceof HyperStreamsError && e.code === 'no_such_address' && e.operation === 'direct');
});

test('services() lists the registered services (none without backends)', async () => {
    const c = await client();
    const services = await within(c.services(), 'the service list');
    assert.ok(Array.isArray(services));
    for (const s of services) {
        assert.equal(typeof s.name, 'string');
        assert.ok(Array.isArray(s.methods));
    }
});

test('a request to a service nobody provides fails with no_such_service', async () => {
    const c = await client();
    await assert.rejects(within(c.request('nobody', 'home', { q: 1 }, { timeoutMs: 2000 }), 'the error'),
        (e) => e instanceof HyperStreamsError && e.code === 'no_such_service' && e.codeNumber === 200 &&
            e.operation === 'request');
    const stream = c.stream('nobody', 'home', 'x');
    await assert.rejects(within(stream.next(), 'the stream error'), (e) => e.code === 'no_such_service' && e.operation === 'stream');
});

test('refreshToken() is acknowledged over the open connection', async () => {
    const c = await client({ token: 'first' });
    await within(c.refreshToken('second'), 'the token refresh');
    assert.equal(c.state, 'ready');
});

test('calls the engine refuses reject at once with a named code', async () => {
    const c = await client();
    await assert.rejects(c.publish('bad..channel', 'x'), (e) => e.code === 'invalid_argument' && e.codeNumber === 500);
    await assert.rejects(c.subscribe('a.>.b', () => {}), (e) => e.code === 'invalid_argument');
    await c.subscribe('dup.channel', () => {});
    await assert.rejects(c.subscribe('dup.channel', () => {}), (e) => e.code === 'already_subscribed');
    await assert.rejects(c.subscribe('a.b', 'not a function'), TypeError);
    await assert.rejects(c.publish('a.b', undefined), TypeError);
});

test('a refused channel or pattern says what is wrong with it', async () => {
    const c = await client();
    await assert.rejects(c.publish('factory..telemetry', 'x'), (e) => e.message ===
        "invalid_argument: the channel 'factory..telemetry' has an empty token (two dots in a row, or a dot at an end)");
    await assert.rejects(c.publish('factory.*.telemetry', 'x', { ack: true }), (e) => e.message ===
        "invalid_argument: the channel 'factory.*.telemetry' has a wildcard ('*' or '>'): " +
        'a channel is an exact name, wildcards are for subscribing');
    await assert.rejects(c.subscribe('factory.L1*', () => {}), (e) => e.message ===
        "invalid_argument: the pattern 'factory.L1*' has '*' or '>' inside a token (a wildcard is a whole token)");
});

test('state events follow the connection; close() fails what is pending', async () => {
    const states = [];
    const c = await client();
    c.on('state', (e) => states.push(e.state));
    const pending = c.request('nobody', 'slow', 'x', { timeoutMs: 60_000 });
    const closing = c.close();
    await assert.rejects(pending, (e) => e.code === 'closed' || e.code === 'no_such_service');
    await closing;
    assert.equal(c.state, 'closed');
    assert.deepEqual(states, ['closed']);
    await assert.rejects(c.publish('a.b', 'x'), (e) => e.code === 'closed');
    assert.equal(await c.close(), undefined);
});

test('connect() without reconnect rejects when nothing listens', async () => {
    const closed = await startRouter();
    const url = closed.url;
    await closed.stop();
    await assert.rejects(connect(url, { WebSocket, reconnect: false }), Error);
});

test('connect() to an empty URL rejects with invalid_argument and frees its engine', async () => {
    const live = codec.liveClients();
    await assert.rejects(connect('', { WebSocket }), (e) => e instanceof HyperStreamsError && e.code === 'invalid_argument');
    assert.equal(codec.liveClients(), live);
});

test('connect() without a WebSocket implementation explains what to pass', async () => {
    await assert.rejects(connect(router.url), /options\.WebSocket/);
});

test('a handler that throws is reported as an error event, delivery goes on', async () => {
    const sub = await client();
    const pub = await client();
    const errors = [];
    sub.on('error', (e) => errors.push(e));
    const got = [];
    await sub.subscribe('test.throws', (m) => {
        got.push(m.text);
        if (m.text === 'boom') throw new Error('handler failed');
    });
    await pub.publish('test.throws', 'boom');
    await pub.publish('test.throws', 'fine');
    await waitFor(() => got.length === 2, 'two messages');
    assert.equal(errors.length, 1);
    assert.equal(errors[0].message, 'handler failed');
});
