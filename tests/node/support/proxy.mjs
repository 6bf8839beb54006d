// A TCP proxy in front of a router, to cut connections the way a network
// does (the router keeps running, its channel history intact).
import net from 'node:net';

export async function startProxy(target) {
    const [host, port] = target.split(':');
    const pairs = new Set();
    let blocked = false;
    const server = net.createServer((inbound) => {
        if (blocked) {
            inbound.destroy();
            return;
        }
        const outbound = net.connect(Number(port), host);
        const pair = { inbound, outbound };
        pairs.add(pair);
        inbound.pipe(outbound);
        outbound.pipe(inbound);
        const drop = () => {
            pairs.delete(pair);
            inbound.destroy();
            outbound.destroy();
        };
        inbound.on('error', drop).on('close', drop);
        outbound.on('error', drop).on('close', drop);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${server.address().port}`;
    return {
        address,
        url: `ws://${address}/ws`,
        connections: () => pairs.size,
        /** Refuses new connections (accepts and drops them) until unblock(). */
        block() { blocked = true; },
        unblock() { blocked = false; },
        /** Cuts every connection (both directions, no close handshake). */
        cut() {
            for (const { inbound, outbound } of pairs) {
                inbound.destroy();
                outbound.destroy();
            }
            pairs.clear();
        },
        close: () => new Promise((resolve) => {
            for (const { inbound, outbound } of pairs) {
                inbound.destroy();
                outbound.destroy();
            }
            server.close(resolve);
        }),
    };
}
