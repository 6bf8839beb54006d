// Pending on a native test backend built on hyperstreams::backend (issue 6):
// deadlines, failing handlers and streams between the npm package and a real
// backend through the real router (hello_backend, which backend.test.mjs
// uses, offers one unary method and no stream).
//
// HYPERSTREAMS_TEST_BACKEND names a program, started as
//   $HYPERSTREAMS_TEST_BACKEND <router backend endpoint>
// that registers service "echo" with
//   echo  (unary)  replies with the request's payload and JSON flag
//   fail  (unary)  fails with handler_failed, text "asked to fail"
//   slow  (unary)  replies after 3 s
//   count (stream) request JSON {"n": N}: items {"i": 1..N}, then the end;
//                  N = 0: an item every 10 ms until cancelled
// and prints a line containing "ready" once registered.
// Run: HYPERSTREAMS_TEST_BACKEND=... node --test tests/node/pending/
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';

import { HyperStreamsError, connect } from '../../../dist/index.js';
import { startRouter } from '../support/router.mjs';
import { sleep, within } from '../support/wait.mjs';

let router;
let backend;
let client;

before(async () => {
    const program = process.env.HYPERSTREAMS_TEST_BACKEND;
    if (!program) throw new Error('set HYPERSTREAMS_TEST_BACKEND (see the comment at the top of this file)');
    router = await startRouter();
    backend = spawn(program, [router.backend], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve, reject) => {
        let out = '';
        backend.stdout.setEncoding('utf8');
        backend.stdout.on('data', (chunk) => {
            out += chunk;
            if (out.includes('ready')) resolve();
        });
        backend.once('exit', (code) => reject(new Error(`backend exited (${code})`)));
    });
    client = await connect(router.url, { WebSocket });
});

after(async () => {
    await client?.close();
    backend?.kill('SIGTERM');
    await router?.stop();
});

test('services() lists the backend and its methods', async () => {
    const services = await client.services();
    const echo = services.find((s) => s.name === 'echo');
    assert.ok(echo);
    assert.equal(echo.instances, 1);
    assert.deepEqual(echo.methods.map((m) => `${m.name}:${m.kind}`).sort(),
        ['count:stream', 'echo:unary', 'fail:unary', 'slow:unary']);
});

test('request() with binary and JSON payloads', async () => {
    const bin = await client.request('echo', 'echo', new Uint8Array([0, 255, 1]));
    assert.deepEqual([...bin.bytes], [0, 255, 1]);
    assert.equal(bin.isJson, false);
    const json = await client.request('echo', 'echo', { a: [1, 2] });
    assert.deepEqual(json.json, { a: [1, 2] });
    assert.equal(json.isJson, true);
});

test('a failing handler rejects with handler_failed and its text', async () => {
    await assert.rejects(client.request('echo', 'fail', 'x'), (e) =>
        e instanceof HyperStreamsError && e.code === 'handler_failed' && /asked to fail/.test(e.message));
});

test('a deadline rejects with deadline_exceeded, on time', async () => {
    const started = performance.now();
    await assert.rejects(client.request('echo', 'slow', 'x', { timeoutMs: 300 }),
        (e) => e.code === 'deadline_exceeded' && e.operation === 'request');
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 290 && elapsed < 1500, `${elapsed} ms`);
});

test('a stream delivers every item in order, then ends', async () => {
    const items = [];
    for await (const item of client.stream('echo', 'count', { n: 100 }, { credit: 4 })) items.push(item.json.i);
    assert.deepEqual(items, Array.from({ length: 100 }, (_, i) => i + 1));
});

test('leaving the loop cancels the stream at the router', async () => {
    const items = [];
    for await (const item of client.stream('echo', 'count', { n: 0 })) {
        items.push(item.json.i);
        if (items.length === 5) break;
    }
    assert.deepEqual(items, [1, 2, 3, 4, 5]);
    const again = await within(client.request('echo', 'echo', 'still fine'), 'a request after the cancel');
    assert.equal(again.text, 'still fine');
});

test('a stream deadline ends the iteration with deadline_exceeded', async () => {
    const stream = client.stream('echo', 'count', { n: 0 }, { timeoutMs: 200 });
    await assert.rejects((async () => { for await (const _ of stream) await sleep(1); })(),
        (e) => e.code === 'deadline_exceeded' && e.operation === 'stream');
});
