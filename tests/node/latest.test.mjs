// subscribe(pattern, { latest: true }) against the real router: the last
// message of every matching channel first, then the live ones; and the
// named error where no namespace enables it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';

import { HyperStreamsError, connect } from '../../dist/index.js';
import { startRouter } from './support/router.mjs';
import { waitFor, within } from './support/wait.mjs';

let router;
const clients = [];

async function client(name) {
    const c = await connect(router.url, { WebSocket, name });
    clients.push(c);
    return c;
}

before(async () => {
    router = await startRouter({
        args: ['--channels-namespaces', '[{"pattern": "plant.>", "latest": true, "history_size": 0}]'],
    });
});

after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await router.stop();
});

test('a latest subscribe gets every matching channel\'s last message, then the live ones', async () => {
    const pub = await client('machines');
    for (const machine of ['m1', 'm2', 'm3']) {
        await pub.publish(`plant.${machine}.telemetry`, { machine, temp: 20 }, { ack: true });
        await pub.publish(`plant.${machine}.telemetry`, { machine, temp: 21 }, { ack: true });
    }
    const dashboard = await client('dashboard');
    const got = [];
    await dashboard.subscribe('plant.*.telemetry', (m) => got.push(m), { latest: true });
    await waitFor(() => got.length === 3, 'the three machines\' state');
    assert.deepEqual(got.map((m) => m.channel).sort(), ['plant.m1.telemetry', 'plant.m2.telemetry', 'plant.m3.telemetry']);
    for (const m of got) {
        assert.equal(m.json.temp, 21, m.channel);
        assert.equal(m.seq, 2);
        assert.equal(m.replayed, true);
    }
    await pub.publish('plant.m2.telemetry', { machine: 'm2', temp: 22 }, { ack: true });
    await waitFor(() => got.length === 4, 'the live message');
    assert.equal(got[3].seq, 3);
    assert.equal(got[3].replayed, false);
});

test('latest where no namespace enables it is not_enabled', async () => {
    const c = await client('elsewhere');
    await assert.rejects(within(c.subscribe('office.*', () => {}, { latest: true }), 'the error'),
        (e) => e instanceof HyperStreamsError && e.code === 'not_enabled' && e.codeNumber === 215 &&
            e.operation === 'subscribe');
});
