// Pending on the router: a direct message with the ack flag is delivered to
// its recipient, but the sender never receives the ack (router_core.cpp,
// on_direct), so send(..., { ack: true }) never settles.
// Run: node --test tests/node/pending/
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';

import { connect } from '../../../dist/index.js';
import { startRouter } from '../support/router.mjs';
import { nextEvent, within } from '../support/wait.mjs';

let router;
before(async () => { router = await startRouter(); });
after(async () => { await router.stop(); });

test('send() with ack resolves once the router delivered the message', async () => {
    const a = await connect(router.url, { WebSocket });
    const b = await connect(router.url, { WebSocket });
    const received = nextEvent(b, 'direct');
    await within(a.send(b.sessionId, new Uint8Array([7, 8]), { ack: true }), 'the ack of the direct message');
    assert.deepEqual([...(await received).bytes], [7, 8]);
    await a.close();
    await b.close();
});
