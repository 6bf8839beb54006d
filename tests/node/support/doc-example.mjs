// Runs one example of the READMEs, a module file, in a process of its own:
//   node doc-example.mjs FILE '{"peer": "<address>", "url": "ws://..."}'
// The names an example leaves to its reader are globals here: a WebSocket
// implementation (the examples are browser code), `client` (connected, for
// the sections that go on from an earlier one), `token`, `jwt`, `newJwt`,
// `bytes`, `handler`, `done` (leave a stream's loop at the first item) and
// `peerAddress` / `otherClientSessionId` (a client of the test). The last
// line of stdout is `example-result {"patterns":[...]}`: every pattern the
// example subscribed to, for the test to check against what is published.
// The process exits once the example finished, closing what it left open.
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';

import { Client, connect } from '@hyperstreams/client';

const [file, settingsText] = process.argv.slice(2);
const settings = JSON.parse(settingsText);

const patterns = [];
const subscribe = Client.prototype.subscribe;
Client.prototype.subscribe = function recorded(pattern, ...rest) {
    patterns.push(String(pattern));
    return subscribe.call(this, pattern, ...rest);
};

Object.assign(globalThis, {
    WebSocket,
    client: await connect(settings.url, { WebSocket, name: 'readme-example' }),
    token: 'a-token',
    jwt: 'a-jwt',
    newJwt: 'a-newer-jwt',
    bytes: new Uint8Array([1, 2, 3]),
    handler: () => {},
    done: () => true,
    peerAddress: settings.peer,
    otherClientSessionId: settings.peer,
});

try {
    await import(pathToFileURL(file).href);
} catch (error) {
    console.error(error);
    process.exit(1);
}
console.log(`example-result ${JSON.stringify({ patterns })}`);
process.exit(0);
