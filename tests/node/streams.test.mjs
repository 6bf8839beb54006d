// Streams, handler failures and deadlines between the npm package and a
// real native backend (the factory simulator) through the real router. The
// cancel of a stream left early is checked at the router: its pending-calls
// gauge returns to zero. A request deadline is met by stopping the backend
// process (SIGSTOP) while the request is in flight.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';

import { HyperStreamsError, connect } from '../../dist/index.js';
import { nativeBinary, startRouter } from './support/router.mjs';
import { waitFor, within } from './support/wait.mjs';

let router;
let simulator;
let client;
let registered = false;
let lastPending = -1;

async function pendingCalls() {
    const text = await (await fetch(`http://${router.admin}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('hyperstreams_pending_calls'));
    return Number(line.split(/\s+/).at(-1));
}

before(async () => {
    router = await startRouter();
    simulator = spawn(nativeBinary('native/simulator/hyperstreams-factory', 'HYPERSTREAMS_FACTORY'),
        ['--router', router.backend, '--lines', '1', '--machines', '2', '--rate', '20', '--jam-every', '0'],
        { stdio: 'ignore' });
    client = await connect(router.url, { WebSocket });
    await waitFor(() => registered, 'the simulator registering factory', 10_000, async () => {
        registered = (await client.services()).some((s) => s.name === 'factory');
    });
});

after(async () => {
    await client?.close();
    simulator?.kill('SIGTERM');
    await router?.stop();
});

test('a handler failure rejects with the backend\'s code and text', async () => {
    await assert.rejects(
        within(client.request('factory', 'set_speed', { line: 'L1', machine: 'M9', speed: 1 }), 'the error'),
        (e) => e instanceof HyperStreamsError && e.code === 'invalid_argument' && e.operation === 'request' &&
            e.message.length > 'invalid_argument: '.length);
    await assert.rejects(within(client.request('factory', 'start', new Uint8Array([0xff, 0x00])), 'the error'),
        (e) => e.code === 'invalid_argument' && /not JSON/.test(e.message));
});

test('stream items arrive as they happen; leaving the loop cancels the stream at the router', async () => {
    const stream = client.stream('factory', 'alarms', {});
    await waitFor(() => lastPending === 1, 'the stream open at the router', 5_000, async () => {
        lastPending = await pendingCalls();
    });
    await client.request('factory', 'fault', { line: 'L1', machine: 'M1', kind: 'jam' });
    await client.request('factory', 'fault', { line: 'L1', machine: 'M2', kind: 'jam' });
    const alarms = [];
    for await (const item of stream) {
        alarms.push(item.json);
        if (alarms.length === 2) break;
    }
    assert.deepEqual(alarms.map((a) => [a.line, a.machine, a.kind]), [['L1', 'M1', 'jam'], ['L1', 'M2', 'jam']]);
    await waitFor(() => lastPending === 0, 'the router dropping the cancelled stream', 5_000, async () => {
        lastPending = await pendingCalls();
    });
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
});

test('credit flow control: a slow reader with credit 2 still gets every item, in order', async () => {
    const stream = client.stream('factory', 'alarms', {}, { credit: 2 });
    await waitFor(() => lastPending === 1, 'the stream open at the router', 5_000, async () => {
        lastPending = await pendingCalls();
    });
    const count = 20;
    for (let i = 0; i < count; i++) {
        await client.request('factory', 'fault', { line: 'L1', machine: i % 2 ? 'M2' : 'M1', kind: 'jam' });
    }
    const ids = [];
    for await (const item of stream) {
        ids.push(item.json.id);
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (ids.length === count) break;
    }
    assert.equal(ids.length, count);
    assert.ok(ids.every((id, i) => i === 0 || id === ids[i - 1] + 1), `in order, none missing: ${ids}`);
});

test('a stream deadline ends the iteration with deadline_exceeded, on time', async () => {
    const started = performance.now();
    await assert.rejects((async () => {
        for await (const item of client.stream('factory', 'alarms', {}, { timeoutMs: 300 })) assert.ok(item);
    })(), (e) => e instanceof HyperStreamsError && e.code === 'deadline_exceeded' && e.operation === 'stream');
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 290 && elapsed < 2_000, `${elapsed} ms`);
});

// kill() only queues SIGSTOP: the process runs on (and may answer) until one
// of its threads takes it. Stalled means every thread stopped.
function stopped(pid) {
    const tasks = readdirSync(`/proc/${pid}/task`);
    return tasks.length > 0 && tasks.every((task) => {
        const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'latin1');
        return stat[stat.lastIndexOf(')') + 2] === 'T';
    });
}

test('a request deadline rejects with deadline_exceeded, on time, while the backend is stalled', async () => {
    simulator.kill('SIGSTOP');
    try {
        await waitFor(() => stopped(simulator.pid), 'the simulator to stop');
        const started = performance.now();
        await assert.rejects(client.request('factory', 'machines', {}, { timeoutMs: 300 }),
            (e) => e instanceof HyperStreamsError && e.code === 'deadline_exceeded' && e.operation === 'request');
        const elapsed = performance.now() - started;
        assert.ok(elapsed >= 290 && elapsed < 2_000, `${elapsed} ms`);
    } finally {
        simulator.kill('SIGCONT');
    }
    const reply = await within(client.request('factory', 'machines', {}, { timeoutMs: 5000 }), 'a reply after the stall');
    assert.equal(reply.json.machines.length, 2);
});

test('a stream the backend refuses rejects on the first read', async () => {
    const stream = client.stream('factory', 'alarms', { line: 7 });
    await assert.rejects(within(stream.next(), 'the error'), (e) => e.code === 'invalid_argument');
});
