// The dashboard's texts for failures (web/src/format.js), from the package's
// own error and state objects: what a toast and the header's title show.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { HyperStreamsError } from '../../dist/index.js';
import { describeConnection, describeError } from '../../web/src/format.js';

test('a failed call shows its code once, then the service\'s words', () => {
    const refused = new HyperStreamsError('invalid_argument', 500, 'speed must be within 0..3000 rpm', 'request');
    assert.equal(describeError(refused), 'invalid_argument: speed must be within 0..3000 rpm');
    assert.equal(describeError(new HyperStreamsError('closed', 502, '', 'publish')), 'closed');
    assert.equal(describeError(new TypeError('not a function')), 'TypeError: not a function');
});

test('a failed connection attempt shows its reason, the platform\'s words and the next attempt', () => {
    assert.equal(describeConnection({ state: 'backoff', reason: 'connection_failed',
        detail: 'the WebSocket to h:1 closed before it opened (close code 1006); the platform does not say why',
        retryInMs: 1234 }),
    'connection_failed: the WebSocket to h:1 closed before it opened (close code 1006); the platform does not say why; ' +
        'next attempt in 1.2 s');
    assert.equal(describeConnection({ state: 'backoff', reason: 'heartbeat_timeout', detail: null, retryInMs: 0 }),
        'heartbeat_timeout; next attempt in 0.0 s');
    assert.equal(describeConnection({ state: 'ready', reason: null, detail: null, retryInMs: null }), '');
});
