// Runs inside a fresh project where the packed tarball was installed, as a
// user would: bare specifiers only. Prints one JSON line with what it saw.
//   node consumer.mjs ws://127.0.0.1:PORT/ws
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

import { HyperStreamsError, connect } from '@hyperstreams/client';

const url = process.argv[2];
const client = await connect(url, { WebSocket, name: 'packed-consumer' });
const received = [];
const done = new Promise((resolve) => {
    client.subscribe('packed.demo', (m) => {
        received.push({ text: m.text, json: m.isJson ? m.json : null, bytes: [...m.bytes], seq: m.seq });
        if (received.length === 3) resolve();
    });
});
await new Promise((resolve) => setTimeout(resolve, 50));
await client.publish('packed.demo', 'text');
await client.publish('packed.demo', { n: 1 });
const position = await client.publish('packed.demo', new Uint8Array([1, 2, 3]), { ack: true });
await done;
let refused = null;
try {
    await client.publish('not a channel', 'x');
} catch (e) {
    refused = e instanceof HyperStreamsError ? e.code : String(e);
}
const wasm = fileURLToPath(import.meta.resolve('@hyperstreams/client/hyperstreams.wasm'));
await client.close();
console.log(JSON.stringify({ received, position, refused, wasmExported: existsSync(wasm), state: client.state }));
