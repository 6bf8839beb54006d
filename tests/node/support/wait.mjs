// Small helpers for tests that wait on real sockets.

/**
 * Resolves once `predicate()` is true; rejects after `timeoutMs` with `what`.
 * `poll`, if given, runs (and is awaited) before each check.
 */
export async function waitFor(predicate, what, timeoutMs = 5_000, poll = null) {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
        if (poll) await poll();
        if (predicate()) return;
        if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, poll ? 50 : 10));
    }
}

/** The next `type` event of `client` that satisfies `accept`. */
export function nextEvent(client, type, accept = () => true, timeoutMs = 5_000) {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            off();
            reject(new Error(`timed out waiting for a '${type}' event`));
        }, timeoutMs);
        const off = client.on(type, (event) => {
            if (!accept(event)) return;
            clearTimeout(timer);
            off();
            resolve(event);
        });
    });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or a rejection naming `what` after `timeoutMs`. */
export function within(promise, what, timeoutMs = 5_000) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
