// Drives `count` messages through a real client (wasm engine + JS layer)
// from an in-process socket, and measures memory around it: the wasm heap
// must not grow once warm, nor the process. Used by tests/node/leak.test.mjs
// (a short run) and `npm run bench:leak` (the full million, docs/BENCHMARKS.md).
import v8 from 'node:v8';
import vm from 'node:vm';

import { connect } from '../../../dist/index.js';
import { loadCodec } from './codec.mjs';
import { fakeRouter } from './fake-socket.mjs';

v8.setFlagsFromString('--expose-gc');
export const gc = vm.runInNewContext('gc');

const CHANNEL = 'bench.leak';
// Offset of the u64 seq in a message frame: 12-byte header, then ext {epoch u32, seq u64}
// (docs/PROTOCOL.md). Checked against the codec before use.
const SEQ_OFFSET = 16;

function memory(codec) {
    gc();
    const usage = process.memoryUsage();
    return { wasm: codec.memoryBytes(), rss: usage.rss, heapUsed: usage.heapUsed, arrayBuffers: usage.arrayBuffers };
}

export async function runMessages({ count, batch = 1000, payloadBytes = 64 }) {
    const codec = await loadCodec();
    const { FakeSocket, sockets } = fakeRouter(codec);
    const client = await connect('ws://fake.invalid/ws', { WebSocket: FakeSocket });

    let received = 0;
    let outOfOrder = 0;
    let bytes = 0;
    await client.subscribe(CHANNEL, (message) => {
        received += 1;
        if (message.seq !== received) outOfOrder += 1;
        bytes += message.bytes.length;
    });
    const socket = sockets.at(-1);

    const payload = new Uint8Array(payloadBytes).fill(0x61);
    const frame = codec.encode({ kind: 'message', name: CHANNEL, epoch: 1, seq: 1, payload });
    const frames = new Uint8Array(frame.length * batch);
    for (let i = 0; i < batch; i++) frames.set(frame, i * frame.length);
    const view = new DataView(frames.buffer);
    const setSeqs = (first) => {
        for (let i = 0; i < batch; i++) {
            const seq = first + i;
            view.setUint32(i * frame.length + SEQ_OFFSET, seq % 2 ** 32, true);
            view.setUint32(i * frame.length + SEQ_OFFSET + 4, Math.floor(seq / 2 ** 32), true);
        }
    };
    setSeqs(123456);
    const check = codec.decodeBatch(frames.subarray(0, frame.length * 2)).frames;
    if (check[0].seq !== '123456' || check[1].seq !== '123457') throw new Error('message frame layout changed');

    const batches = Math.ceil(count / batch);
    const warmupBatches = Math.max(1, Math.floor(batches / 10));
    let warm;
    const started = performance.now();
    for (let b = 0; b < batches; b++) {
        if (b === warmupBatches) warm = memory(codec);
        if (process.env.LEAK_TRACE && b % warmupBatches === 0) console.log(b * batch, memory(codec));
        setSeqs(b * batch + 1);
        socket.deliver(frames);
        if (b % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    }
    const ms = performance.now() - started;
    const end = memory(codec);
    await client.close();
    return {
        sent: batches * batch,
        received,
        outOfOrder,
        bytes,
        ms,
        warm,
        end,
    };
}

export function describe(r) {
    const mib = (n) => (n / 2 ** 20).toFixed(1);
    return `${r.received} messages in ${(r.ms / 1000).toFixed(1)} s ` +
        `(${Math.round(r.received / (r.ms / 1000))} msg/s); wasm memory ${mib(r.warm.wasm)} -> ${mib(r.end.wasm)} MiB; ` +
        `rss ${mib(r.warm.rss)} -> ${mib(r.end.rss)} MiB; JS heap ${mib(r.warm.heapUsed)} -> ${mib(r.end.heapUsed)} MiB`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
    const count = Number(process.argv[2] ?? 1_000_000);
    const r = await runMessages({ count });
    console.log(describe(r));
}
