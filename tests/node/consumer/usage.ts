// Type-checked against the installed package (tests/node/pack.test.mjs):
// the declarations a TypeScript user gets describe the real API.
import {
    connect, preload, HyperStreamsError,
    type Client, type Message, type Payload, type ServiceInfo, type Subscription,
} from '@hyperstreams/client';

declare const WebSocketImpl: new (url: string) => unknown;

export async function example(): Promise<void> {
    await preload({ locateFile: (file, defaultUrl) => new URL(file, defaultUrl) });
    const client: Client = await connect('ws://localhost:7070/ws', {
        WebSocket: WebSocketImpl, token: 'jwt', name: 'typed', reconnect: { baseMs: 100, maxMs: 5000 },
        signal: AbortSignal.timeout(60_000),
        on: {
            state: ({ state, reason, detail, retryInMs }) => {
                if (state === 'backoff') console.log(`cannot connect (${reason}: ${detail}), retrying in ${retryInMs} ms`);
            },
            error: (error) => console.log(error.message),
        },
    });
    const cluster: Client = await connect(['ws://a.example:7070/ws', new URL('ws://b.example:7070/ws')], {
        WebSocket: WebSocketImpl, reconnect: false,
        on: { state: ({ state, url }) => console.log(state, url ?? 'no router') },
    });
    await cluster.close();
    const off = client.on('state', ({ state, previous, reason }) => console.log(state, previous, reason));
    client.on('gap', (gap) => console.log(gap.channel, gap.count ?? 'unknown', gap.epochChanged));
    client.on('error', (error) => console.log(error.message));
    off();

    const sub: Subscription = await client.subscribe('factory.*.telemetry', (m: Message) => {
        const bytes: Uint8Array = m.bytes;
        const seq: number = m.seq;
        console.log(m.channel, m.text, m.json, bytes.length, seq, m.replayed, m.subscription.pattern);
    }, { policy: 'keep_latest' });
    const position = await client.publish('factory.l1.telemetry', { t: 21.5 }, { ack: true });
    console.log(position.epoch + position.seq);
    await client.publish('factory.l1.raw', new Uint8Array([1, 2]));
    await client.send('session-id', 'hello');

    const reply: Payload = await client.request('factory', 'machines', {}, { timeoutMs: 2000 });
    console.log(reply.json, reply.text, reply.bytes);
    for await (const item of client.stream('factory', 'alarms', null, { credit: 8 })) {
        console.log(item.json);
        break;
    }
    const services: ServiceInfo[] = await client.services();
    console.log(services.map((s) => `${s.name}:${s.methods.map((m) => m.kind).join(',')}`));
    await client.refreshToken('new-jwt');
    await sub.unsubscribe();
    try {
        await client.request('x', 'y', 'z');
    } catch (e) {
        if (e instanceof HyperStreamsError && e.code === 'deadline_exceeded') console.log(e.codeNumber, e.operation);
    }
    await client.close();
}
