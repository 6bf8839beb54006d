// @hyperstreams/client: the HyperStreams client for browsers and Node.
// README.md of the package (wasm/README.md in the repository) shows the API.
import { Client, START, Stream, Subscription } from './client.js';
import { runtimeOf } from './engine.js';
import { HyperStreamsError } from './errors.js';
import { loadModule } from './load.js';
import { DirectMessage, Message, Payload } from './message.js';

export { Client, DirectMessage, HyperStreamsError, Message, Payload, Stream, Subscription };

/**
 * Loads the wasm module ahead of connect() (optional: connect() loads it
 * too). Loading happens once; the options of the first call win.
 */
export async function preload(options = {}) {
    await loadModule(options);
}

/**
 * Connects to a router's WebSocket endpoint (e.g. 'wss://host/ws'), or to
 * one of several routers of a cluster (an array of endpoints, tried in
 * turn); resolves with the client once the first connection is ready.
 * Listeners in `options.on` hear every attempt before that (a failed one is
 * a 'state' event 'backoff' with its reason, the delay to the next and its
 * URL); an abort of `options.signal` gives up.
 */
export async function connect(url, options = {}) {
    const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
    if (typeof WebSocketImpl !== 'function') {
        throw new TypeError('@hyperstreams/client: no WebSocket here; pass options.WebSocket ' +
            "(in Node: import WebSocket from 'ws')");
    }
    const mod = await loadModule(options);
    const urls = Array.isArray(url) ? url.map(String) : [String(url)];
    const client = new Client(runtimeOf(mod), urls, options, WebSocketImpl);
    return client[START](options.signal);
}
