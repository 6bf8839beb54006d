// Pending on a native test backend built on hyperstreams::backend (issue 6)
// that offers what hello_backend (backend.test.mjs) and the factory
// simulator (streams.test.mjs) do not: binary payloads echoed unchanged, and
// a request deadline that expires while the backend is working (rather than
// stopped, as streams.test.mjs does it).
//
// HYPERSTREAMS_TEST_BACKEND names a program, started as
//   $HYPERSTREAMS_TEST_BACKEND <router backend endpoint>
// that registers service "echo" with
//   echo  (unary)  replies with the request's payload and JSON flag
//   slow  (unary)  replies after 3 s
// and prints a line containing "ready" once registered.
// Run: HYPERSTREAMS_TEST_BACKEND=... node --test tests/node/pending/
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';

import { connect } from '../../../dist/index.js';
import { startRouter } from '../support/router.mjs';

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

test('request() round-trips binary and JSON payloads unchanged', async () => {
    const bin = await client.request('echo', 'echo', new Uint8Array([0, 255, 1]));
    assert.deepEqual([...bin.bytes], [0, 255, 1]);
    assert.equal(bin.isJson, false);
    const json = await client.request('echo', 'echo', { a: [1, 2] });
    assert.deepEqual(json.json, { a: [1, 2] });
    assert.equal(json.isJson, true);
});

test('a request deadline rejects with deadline_exceeded, on time', async () => {
    const started = performance.now();
    await assert.rejects(client.request('echo', 'slow', 'x', { timeoutMs: 300 }),
        (e) => e.code === 'deadline_exceeded' && e.operation === 'request');
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 290 && elapsed < 1500, `${elapsed} ms`);
    const after = await client.request('echo', 'echo', 'still fine');
    assert.equal(after.text, 'still fine');
});
