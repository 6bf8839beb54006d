// An in-process stand-in for a router's WebSocket, for the tests that
// measure the JS layer itself (no network, no router timing): it answers
// hello with a welcome and subscribe with an ack, and lets the test deliver
// transport messages. Frames are built and read with the wasm codec.
import { readFileSync } from 'node:fs';

const frames = JSON.parse(readFileSync(new URL('../../vectors/frames.json', import.meta.url), 'utf8'));
const welcomeHex = frames.vectors.find((v) => v.name === 'welcome_new_session').hex;

export function concat(parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const p of parts) {
        out.set(p, offset);
        offset += p.length;
    }
    return out;
}

export function fakeRouter(codec) {
    const welcome = Uint8Array.from(Buffer.from(welcomeHex, 'hex'));
    const sockets = [];

    class FakeSocket {
        constructor(url) {
            this.url = url;
            this.readyState = 0;
            this.sent = [];
            this.listeners = { close: [] };
            sockets.push(this);
            setTimeout(() => {
                this.readyState = 1;
                this.onopen?.({});
            });
        }
        send(bytes) {
            this.sent.push(bytes);
            // Later, not inside the client's call: the codec shares the module.
            queueMicrotask(() => {
                const replies = [];
                for (const f of codec.decodeBatch(bytes).frames) {
                    if (f.kind === 'hello') replies.push(welcome);
                    if (f.kind === 'subscribe') replies.push(codec.encode({ kind: 'ack', id: f.id }));
                }
                if (replies.length > 0) this.deliver(concat(replies));
            });
        }
        deliver(bytes) {
            if (this.readyState !== 1) return;
            this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
        }
        close() {
            if (this.readyState >= 2) return;
            this.readyState = 3;
            setTimeout(() => {
                this.onclose?.({ code: 1000 });
                for (const fn of this.listeners.close) fn({ code: 1000 });
            });
        }
        addEventListener(type, fn) {
            this.listeners[type]?.push(fn);
        }
    }

    return { FakeSocket, sockets };
}
