// client.presence(channel) and subscribe(..., { joinLeave: true }) against
// the real router, with a namespace that has presence and join/leave: who is
// subscribed, the joins and leaves of the others, and the named errors.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';

import { connect } from '../../dist/index.js';
import { startRouter } from './support/router.mjs';
import { waitFor } from './support/wait.mjs';

let router;
const clients = [];
before(async () => {
    router = await startRouter({
        args: ['--channels-namespaces',
            '[{"pattern": "room.>", "presence": true, "join_leave": true}, {"pattern": "lobby.>", "presence": true}]'],
    });
});
after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await router.stop();
});

async function client(name) {
    const c = await connect(router.url, { WebSocket, name });
    clients.push(c);
    return c;
}

test('presence lists who is subscribed; joins and leaves reach a joinLeave subscription', async () => {
    const watcher = await client('watcher');
    const events = [];
    watcher.on('join', (e) => events.push({ ...e, kind: 'join' }));
    watcher.on('leave', (e) => events.push({ ...e, kind: 'leave' }));
    const subscription = await watcher.subscribe('room.a', () => {}, { joinLeave: true });

    const other = await client('other');
    await other.subscribe('room.a', () => {});
    await waitFor(() => events.length === 1, 'the join');
    assert.equal(events[0].channel, 'room.a');
    assert.equal(events[0].address, other.sessionId);
    assert.equal(events[0].subject, '');
    assert.equal(events[0].name, 'other');
    assert.equal(events[0].subscription, subscription);

    const list = await watcher.presence('room.a');
    assert.equal(list.count, 2);
    assert.deepEqual(list.members.map((m) => m.name).sort(), ['other', 'watcher']);

    const address = other.sessionId;
    await other.close();
    await waitFor(() => events.length === 2, 'the leave');
    assert.deepEqual(events.map((e) => [e.kind, e.channel, e.address]),
        [['join', 'room.a', address], ['leave', 'room.a', address]]);
    assert.equal((await watcher.presence('room.a')).count, 1);
});

test('presence and joinLeave fail by name where the namespace has them off', async () => {
    const c = await client('asker');
    await assert.rejects(c.presence('office.a'), (e) => e.code === 'not_enabled');
    await assert.rejects(c.subscribe('lobby.a', () => {}, { joinLeave: true }), (e) => e.code === 'not_enabled');
    await assert.rejects(c.presence('room.*'), (e) => e.code === 'invalid_argument');
    assert.equal((await c.presence('lobby.a')).count, 0);
});
