// Messages per second through a connected client (the wasm engine and the
// JS layer, an in-process socket: no network), for docs/BENCHMARKS.md:
//   receive: transport messages of 1,000 `message` frames (64-byte payloads)
//            decoded by the engine and delivered to a subscription handler
//            as Message objects;
//   publish: publish() of a 64-byte payload without ack, each encoded and
//            handed to the socket.
// Each is run `rounds` times over `count` messages; the best round counts
// (the least disturbed on a shared machine).
//   node tests/node/support/throughput.mjs [count] [rounds]
import { connect } from '../../../dist/index.js';
import { loadCodec } from './codec.mjs';
import { fakeRouter } from './fake-socket.mjs';

const CHANNEL = 'bench.throughput';
const BATCH = 1000;
// Offset of the low u32 of seq in a message frame: 12-byte header, epoch u32 (docs/PROTOCOL.md).
const SEQ_OFFSET = 16;

export async function measureThroughput({ count = 500_000, rounds = 5 } = {}) {
    const codec = await loadCodec();
    const { FakeSocket, sockets } = fakeRouter(codec);
    const client = await connect('ws://fake.invalid/ws', { WebSocket: FakeSocket });
    let received = 0;
    await client.subscribe(CHANNEL, () => { received += 1; });
    const socket = sockets.at(-1);

    const payload = new Uint8Array(64).fill(0x61);
    const frame = codec.encode({ kind: 'message', name: CHANNEL, epoch: 1, seq: 1, payload });
    const frames = new Uint8Array(frame.length * BATCH);
    for (let i = 0; i < BATCH; i++) frames.set(frame, i * frame.length);
    const view = new DataView(frames.buffer);
    let seq = 0;
    const receive = () => {
        const before = received;
        const started = performance.now();
        for (let b = 0; b < count / BATCH; b++) {
            for (let i = 0; i < BATCH; i++) view.setUint32(i * frame.length + SEQ_OFFSET, ++seq, true);
            socket.deliver(frames);
        }
        const ms = performance.now() - started;
        if (received - before !== count) throw new Error(`${received - before} of ${count} messages delivered`);
        return count / (ms / 1000);
    };

    let sent = 0;
    socket.send = () => { sent += 1; };
    const publish = async () => {
        const before = sent;
        const started = performance.now();
        for (let i = 0; i < count; i++) client.publish(CHANNEL, payload);
        const ms = performance.now() - started;
        await null;
        if (sent - before !== count) throw new Error(`${sent - before} of ${count} messages sent`);
        return count / (ms / 1000);
    };

    const best = { receive: 0, publish: 0 };
    for (let r = 0; r < rounds; r++) {
        best.receive = Math.max(best.receive, receive());
        best.publish = Math.max(best.publish, await publish());
    }
    await client.close();
    return best;
}

if (import.meta.url === `file://${process.argv[1]}`) {
    const count = Number(process.argv[2] ?? 500_000);
    const rounds = Number(process.argv[3] ?? 5);
    const best = await measureThroughput({ count, rounds });
    console.log(`${count} messages x ${rounds} rounds, best: receive ${Math.round(best.receive)} msg/s, ` +
        `publish ${Math.round(best.publish)} msg/s`);
}
