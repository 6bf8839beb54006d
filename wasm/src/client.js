// The client: moves bytes, time and events between a WebSocket and the
// engine in wasm. Every decision (when to connect, retry, resubscribe,
// resume, time out, what a frame means) is the engine's; this layer opens
// and closes sockets when told, passes performance.now(), runs one timer for
// the engine's next deadline, and turns events into promises, handler calls
// and client events.
import { Engine } from './engine.js';
import { HyperStreamsError } from './errors.js';
import { DirectMessage, Message, Payload, encodePayload } from './message.js';

const SOCKET_OPEN = 1;
const CLOSE_WAIT_MS = 1000;

const now = () => performance.now();

// Why a WebSocket closed before it opened, as far as the platform tells:
// Node's `ws` hands its error to the error event (a refused connection, the
// HTTP status of a declined upgrade, an answer that is not HTTP); browsers
// tell nothing at all. A reason is a transport code of the engine's errc.
function openingFailure(error, closeEvent, url) {
    let host = url;
    let target = url;
    try {
        const parsed = new URL(url);
        host = parsed.host;
        target = parsed.host + parsed.pathname;
    } catch {
        // Shown as given.
    }
    const message = error?.message ?? '';
    const status = /Unexpected server response: (\d+)/.exec(message);
    if (status) {
        return { reason: 'upgrade_refused', detail: `HTTP ${status[1]} from ${target} instead of a WebSocket upgrade` };
    }
    if (error?.code === 'ECONNREFUSED') {
        return { reason: 'connection_refused', detail: `nothing accepts connections on ${host}` };
    }
    if (/^HPE_/.test(error?.code ?? '') || error?.code === 'ECONNRESET' || /^Invalid (Upgrade|Sec-WebSocket)/.test(message)) {
        return {
            reason: 'transport_handshake_failed',
            detail: `no WebSocket handshake with ${host} (${message}): not a WebSocket endpoint?`,
        };
    }
    if (error) return { reason: 'connection_failed', detail: `cannot connect to ${host}: ${message || error}` };
    return {
        reason: 'connection_failed',
        detail: `the WebSocket to ${host} closed before it opened (close code ${closeEvent?.code}); ` +
            'the platform does not say why',
    };
}

// Frees the engine of a client that was dropped without close(). The held
// value is the Engine, which does not reference the client.
const engines = new FinalizationRegistry((engine) => engine.destroy());

/** Internal: the constructor and start of a client, for connect(). */
export const START = Symbol('start');

/** An active subscription; `unsubscribe()` ends it. */
export class Subscription {
    #unsubscribe;
    constructor(id, pattern, unsubscribe) {
        this.id = id;
        this.pattern = pattern;
        this.#unsubscribe = unsubscribe;
    }
    /** Stops delivery at once; resolves when the router confirmed. */
    unsubscribe() { return this.#unsubscribe(); }
}

/**
 * A server stream as an async iterator. Leaving a for-await loop early (break,
 * return, throw) cancels the stream at the router; so does cancel().
 */
export class Stream {
    #items = [];
    #waiters = [];
    #done = false;
    #error = null;
    #consumed;
    #cancel;

    constructor(consumed, cancel) {
        this.#consumed = consumed;
        this.#cancel = cancel;
    }

    [Symbol.asyncIterator]() { return this; }

    next() {
        if (this.#items.length > 0) {
            const value = this.#items.shift();
            this.#consumed();
            return Promise.resolve({ value, done: false });
        }
        if (this.#error) {
            const error = this.#error;
            this.#error = null;
            return Promise.reject(error);
        }
        if (this.#done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
    }

    return() {
        if (!this.#done) {
            this.#done = true;
            this.#cancel();
        }
        this.#items.length = 0;
        this.#error = null;
        this.#settle((w) => w.resolve({ value: undefined, done: true }));
        return Promise.resolve({ value: undefined, done: true });
    }

    /** Cancels the stream (the same as leaving the loop). */
    cancel() { return this.return(); }

    // Called by the client.
    push(item) {
        if (this.#done) return;
        const waiter = this.#waiters.shift();
        if (waiter) {
            this.#consumed();
            waiter.resolve({ value: item, done: false });
        } else {
            this.#items.push(item);
        }
    }
    end() {
        this.#done = true;
        this.#settle((w) => w.resolve({ value: undefined, done: true }));
    }
    fail(error) {
        if (this.#done) return;
        this.#done = true;
        if (this.#waiters.length > 0) this.#settle((w) => w.reject(error));
        else this.#error = error;
    }
    #settle(fn) {
        const waiters = this.#waiters;
        this.#waiters = [];
        for (const w of waiters) fn(w);
    }
}

export class Client {
    #rt;
    #engine;
    #WebSocket;
    #reconnect;
    #socket = null;
    #timer = null;
    #timerAt = Infinity;
    #pending = new Map();        // operation id -> { resolve, reject }
    #subscriptions = new Map();  // subscription id -> { subscription, handler }
    #streams = new Map();        // stream id -> Stream
    #listeners = new Map();      // event name -> Set of listeners
    #queue = [];
    #dispatching = false;
    #everReady = false;
    #ready;
    #lastConnectionError = null;
    #closing = null;
    #stopWaiting = null;  // removes the abort listener of connect()'s signal

    constructor(rt, urls, options, WebSocketImpl) {
        // Before anything else: they hear the first attempt, and a bad one
        // throws before an engine exists.
        for (const [type, listener] of Object.entries(options.on ?? {})) {
            if (typeof listener !== 'function') throw new TypeError(`connect: on.${type} must be a function`);
            this.on(type, listener);
        }
        this.#rt = rt;
        this.#WebSocket = WebSocketImpl;
        this.#reconnect = options.reconnect ?? true;
        const backoff = typeof this.#reconnect === 'object' ? this.#reconnect : {};
        const engineDefault = (field) => rt.constant(`client_config::${field}`);
        this.#engine = new Engine(rt, {
            urls,
            name: options.name ?? 'hyperstreams-js',
            token: options.token ?? '',
            seed: Math.floor(Math.random() * 2 ** 52),
            backoffBaseMs: backoff.baseMs ?? engineDefault('backoff_base_ms'),
            backoffMaxMs: backoff.maxMs ?? engineDefault('backoff_max_ms'),
            maxRedirects: backoff.maxRedirects ?? engineDefault('max_redirects'),
            handshakeTimeoutMs: options.handshakeTimeoutMs ?? engineDefault('handshake_timeout_ms'),
            heartbeatMs: options.heartbeatMs ?? engineDefault('heartbeat_ms'),
            outboxLimitBytes: options.outboxLimitBytes ?? engineDefault('outbox_limit_bytes'),
        });
        engines.register(this, this.#engine, this);
        this.#ready = {};
        this.#ready.promise = new Promise((resolve, reject) => {
            this.#ready.resolve = resolve;
            this.#ready.reject = reject;
        });
    }

    /**
     * Starts connecting; resolves once the first connection is ready. An
     * abort of `signal` before that closes the client and rejects with the
     * signal's reason.
     */
    [START](signal) {
        if (signal) {
            const abort = () => {
                this.#lastConnectionError = signal.reason;
                this.close();
            };
            if (signal.aborted) {
                abort();
                return this.#ready.promise;
            }
            signal.addEventListener('abort', abort, { once: true });
            this.#stopWaiting = () => signal.removeEventListener('abort', abort);
        }
        const code = this.#engine.start(now());
        if (code !== 0) {
            this.#lastConnectionError = this.#error(code, 'cannot start (URL, name or token)', 'connection');
            this.close();  // frees the engine and rejects the promise below
        } else {
            this.#drain();
        }
        return this.#ready.promise;
    }

    /** 'connecting', 'handshaking', 'ready', 'backoff', 'awaiting_token', 'closed' or 'failed'. */
    get state() { return this.#engine.handle ? this.#engine.state : 'closed'; }
    /** This connection's session id: the address others send() to. */
    get sessionId() { return this.#engine.handle ? this.#engine.sessionId : ''; }

    // --- events ----------------------------------------------------------------

    /** Adds a listener; returns a function that removes it. */
    on(type, listener) {
        let set = this.#listeners.get(type);
        if (!set) this.#listeners.set(type, (set = new Set()));
        set.add(listener);
        return () => this.off(type, listener);
    }

    off(type, listener) {
        this.#listeners.get(type)?.delete(listener);
    }

    #emit(type, value) {
        const set = this.#listeners.get(type);
        if (!set || set.size === 0) return false;
        for (const listener of [...set]) {
            try {
                listener(value);
            } catch (error) {
                this.#reportHandlerError(error, type);
            }
        }
        return true;
    }

    // An exception thrown by user code: an 'error' event, or, with no
    // listener (or from an error listener), an uncaught exception as usual.
    #reportHandlerError(error, from) {
        if (from !== 'error' && this.#emit('error', error)) return;
        queueMicrotask(() => { throw error; });
    }

    // --- pub/sub ----------------------------------------------------------------

    /**
     * Subscribes `handler` to `pattern` (`*` one token, a final `>` the rest).
     * Resolves with the Subscription once the router confirmed it; messages
     * may reach `handler` before that. `since` ({ epoch, seq } of the last
     * message the caller has; one channel, no wildcard) first replays what
     * the channel's history holds after it. `latest`: first the last message
     * of every matching channel (flag replayed), where the router enables it.
     */
    subscribe(pattern, handler, options = {}) {
        return new Promise((resolve, reject) => {
            if (typeof handler !== 'function') throw new TypeError('subscribe: handler must be a function');
            let policy = this.#rt.policies.get(options.policy ?? 'default');
            if (policy === undefined) throw new TypeError(`subscribe: unknown policy ${options.policy}`);
            // The subscribe flags ride above the policy's bits (wasm/bindings.cpp, hs_subscribe).
            if (options.latest) policy |= this.#rt.constant('frame_flags::latest');
            if (options.joinLeave) policy |= this.#rt.constant('frame_flags::join_leave');
            const since = options.since;
            if (since !== undefined && !(Number.isSafeInteger(since?.epoch) && Number.isSafeInteger(since?.seq))) {
                throw new TypeError('subscribe: since must be { epoch, seq }, e.g. a message\'s');
            }
            const id = this.#begin('subscribe', (e) => e.subscribe(String(pattern), policy, since),
                () => this.#nameProblem('pattern', String(pattern)));
            const subscription = new Subscription(id, String(pattern), () => this.#unsubscribe(id));
            this.#subscriptions.set(id, { subscription, handler });
            this.#pending.set(id, { resolve: () => resolve(subscription), reject });
            this.#drain();
        });
    }

    #unsubscribe(id) {
        if (!this.#subscriptions.delete(id) || !this.#engine.handle) return Promise.resolve();
        return this.#operation('unsubscribe', (e) => e.unsubscribe(id), () => undefined);
    }

    /**
     * Publishes `data` (Uint8Array, string or JSON value) to `channel`. With
     * { ack: true } resolves with the message's { epoch, seq } once the router
     * accepted it; otherwise resolves once it is sent or queued. { key } makes
     * a repeat within the router's window resolve with the first's position,
     * undelivered; { ttlS } expires the message after that many seconds.
     */
    publish(channel, data, options = {}) {
        return this.#addressed('publish',
            (e, p) => e.publish(String(channel), p.bytes, !!options.ack, p.flags, options.key, options.ttlS),
            data, options, () => this.#nameProblem('channel', String(channel)));
    }

    /** Sends `data` to one client or backend by its address (session id). */
    send(address, data, options = {}) {
        return this.#addressed('direct', (e, p) => e.sendDirect(String(address), p.bytes, !!options.ack, p.flags),
            data, options);
    }

    /** Sends `data` to every client connected to the router. */
    broadcast(data, options = {}) {
        return this.#addressed('broadcast', (e, p) => e.broadcast(p.bytes, !!options.ack, p.flags), data, options);
    }

    #addressed(op, call, data, options, why) {
        if (options.ack) {
            return this.#operation(op, (e) => call(e, this.#encode(data)),
                (ev) => ({ epoch: ev.epoch, seq: ev.seq }), why);
        }
        return new Promise((resolve) => {
            this.#begin(op, (e) => call(e, this.#encode(data)), why);
            this.#drain();
            resolve(undefined);
        });
    }

    // --- requests and streams ------------------------------------------------------

    /** Calls `service`/`method`; resolves with the response payload. */
    request(service, method, data, options = {}) {
        const timeoutMs = options.timeoutMs ?? 0;
        return this.#operation('request', (e) => {
            const p = this.#encode(data);
            return e.request(String(service), String(method), p.bytes, timeoutMs, now(), p.flags);
        }, (ev) => this.#payload(ev));
    }

    /** Opens a server stream: an async iterator of payloads. */
    stream(service, method, data, options = {}) {
        const credit = options.credit ?? this.#rt.constant('default_stream_credit');
        const timeoutMs = options.timeoutMs ?? 0;
        let id = 0;
        const stream = new Stream(
            () => {
                if (this.#engine.handle && this.#streams.has(id)) {
                    this.#engine.streamConsumed(id, 1);
                    this.#drain();
                }
            },
            () => {
                if (this.#streams.delete(id) && this.#engine.handle) {
                    this.#engine.cancel(id);
                    this.#drain();
                }
            });
        try {
            id = this.#begin('stream', (e) => {
                const p = this.#encode(data);
                return e.openStream(String(service), String(method), p.bytes, credit, timeoutMs, now(), p.flags);
            });
            this.#streams.set(id, stream);
            this.#drain();
        } catch (error) {
            stream.fail(error);
        }
        return stream;
    }

    // --- discovery and token ----------------------------------------------------------

    /**
     * Who is subscribed to `channel` (in a namespace with presence):
     * { count, members: [{ address, subject, name }] }.
     */
    presence(channel) {
        return new Promise((resolve, reject) => {
            const id = this.#begin('presence', (e) => e.presence(String(channel)),
                () => this.#nameProblem('channel', String(channel)));
            this.#pending.set(id, {
                resolve: (ev) => resolve({ count: ev.presenceCount, members: ev.members }),
                reject,
            });
            this.#drain();
        });
    }

    /** The services registered at the router: [{ name, instances, methods: [{ name, kind }] }]. */
    services() {
        return this.#operation('discover', (e) => e.discover(), (ev) => ev.services);
    }

    /** Replaces the token, over the open connection and for every later one. */
    refreshToken(token) {
        return this.#operation('token_refresh', (e) => e.refreshToken(String(token), now()), () => undefined);
    }

    // --- closing ------------------------------------------------------------------

    /**
     * Says goodbye and releases the engine. Pending operations fail with
     * 'closed'. Resolves once the socket closed (at most about a second).
     */
    close() {
        if (this.#closing) return this.#closing;
        const engine = this.#engine;
        const socket = this.#socket;
        this.#closing = new Promise((resolve) => {
            if (!socket || socket.readyState > SOCKET_OPEN) {
                resolve();
                return;
            }
            const timer = setTimeout(resolve, CLOSE_WAIT_MS);
            socket.addEventListener('close', () => {
                clearTimeout(timer);
                resolve();
            });
        });
        if (engine.handle) {
            engine.close(now());
            this.#drain();
        }
        // What the engine did not answer (nothing, normally) fails here.
        const closed = this.#error(this.#rt.errcNumber('closed'), 'client closed', 'connection');
        for (const { reject } of this.#pending.values()) reject(closed);
        this.#pending.clear();
        for (const stream of this.#streams.values()) stream.fail(closed);
        this.#streams.clear();
        this.#subscriptions.clear();
        if (this.#timer !== null) clearTimeout(this.#timer);
        this.#timer = null;
        if (this.#socket) this.#socket.close(1000);
        this.#socket = null;
        engines.unregister(this);
        engine.destroy();
        this.#stopWaiting?.();
        if (!this.#everReady) this.#ready.reject(this.#lastConnectionError ?? closed);
        return this.#closing;
    }

    // --- engine plumbing ------------------------------------------------------------

    #error(code, text, op) {
        return new HyperStreamsError(this.#rt.errcName(code), code, text, op);
    }

    #encode(data) { return encodePayload(data, this.#rt.jsonFlag); }

    #isJson(ev) { return (ev.flags & this.#rt.jsonFlag) !== 0; }

    #payload(ev) { return new Payload(ev.payload, this.#isJson(ev)); }

    // Runs one engine call that starts an operation; its id, or a throw.
    // `why` says what is wrong with the arguments when the engine refuses
    // them as invalid (e.g. what is wrong with a channel name).
    #begin(op, call, why = () => '') {
        const engine = this.#engine;
        if (!engine.handle) throw this.#error(this.#rt.errcNumber('closed'), 'client closed', op);
        const id = call(engine);
        const code = engine.lastError;
        if (code !== 0) {
            this.#drain();
            const invalid = this.#rt.errcName(code) === 'invalid_argument' ? why() : '';
            throw this.#error(code, invalid || 'refused', op);
        }
        return id;
    }

    // "the channel 'a..b' has an empty token (...)", or '' when it is valid.
    #nameProblem(kind, name) {
        const problem = this.#rt.nameProblem(name, kind === 'pattern');
        return problem ? `the ${kind} '${name}' ${problem}` : '';
    }

    // An operation answered by an event: its promise.
    #operation(op, call, result, why) {
        return new Promise((resolve, reject) => {
            const id = this.#begin(op, call, why);
            this.#pending.set(id, { resolve: (ev) => resolve(result(ev)), reject });
            this.#drain();
        });
    }

    // After every call into the engine: take its events (performing the
    // transport actions at once, in order), send its output, re-arm the
    // timer, then dispatch the events. Dispatching may call into the engine
    // again; those events join the queue being dispatched.
    #drain() {
        const engine = this.#engine;
        if (engine.handle) {
            for (let ev = engine.poll(); ev !== null; ev = engine.poll()) {
                if (ev.kind === 'open_transport') {
                    this.#openSocket(ev.id, ev.name);
                } else if (ev.kind === 'close_transport') {
                    this.#flush();
                    this.#closeSocket();
                } else {
                    if (ev.kind === 'service_list') ev.services = engine.services();
                    if (ev.kind === 'presence' || ev.kind === 'join' || ev.kind === 'leave') {
                        ev.members = engine.members();
                        ev.presenceCount = engine.presenceCount();
                    }
                    this.#queue.push(ev);
                }
            }
            this.#flush();
            this.#schedule();
        }
        if (this.#dispatching) return;
        this.#dispatching = true;
        try {
            const queue = this.#queue;
            for (let i = 0; i < queue.length; i++) this.#dispatch(queue[i]);
            queue.length = 0;
        } finally {
            this.#dispatching = false;
        }
    }

    #flush() {
        for (let out = this.#engine.takeOutput(); out !== null; out = this.#engine.takeOutput()) {
            if (this.#socket && this.#socket.readyState === SOCKET_OPEN) this.#socket.send(out);
        }
    }

    #schedule() {
        const at = this.#engine.nextDeadline();
        // An early wake-up is harmless (handle_timeout does nothing yet), so
        // a timer already due before `at` stays. With no deadline at all
        // (failed, awaiting a token) none stays: nothing keeps the client
        // alive then, and a dropped one can be collected.
        if (at >= 0 && this.#timer !== null && this.#timerAt <= at) return;
        if (this.#timer !== null) clearTimeout(this.#timer);
        this.#timer = null;
        this.#timerAt = Infinity;
        if (at < 0) return;
        this.#timerAt = at;
        this.#timer = setTimeout(() => {
            this.#timer = null;
            this.#timerAt = Infinity;
            if (!this.#engine.handle) return;
            this.#engine.handleTimeout(now());
            this.#drain();
        }, Math.max(0, Math.ceil(at - now())));
    }

    #openSocket(id, url) {
        const engine = this.#engine;
        let socket;
        try {
            socket = new this.#WebSocket(url);
        } catch (error) {
            // An unusable URL is a failed attempt like any other.
            this.#lastConnectionError = error;
            queueMicrotask(() => {
                if (!engine.handle) return;
                engine.transportClosed(id, now(), 'connection_failed', `cannot open a WebSocket to ${url}: ${error.message}`);
                this.#drain();
            });
            return;
        }
        socket.binaryType = 'arraybuffer';
        this.#socket = socket;
        let opened = false;
        let failure = null;
        socket.onopen = () => {
            if (this.#socket !== socket) return;
            opened = true;
            engine.transportOpened(id, now());
            this.#drain();
        };
        socket.onmessage = (event) => {
            if (this.#socket !== socket) return;
            const data = event.data;
            const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(data);
            engine.receive(bytes, now());
            this.#drain();
        };
        // A close event follows; where the platform says why (Node's ws),
        // the error says it.
        socket.onerror = (event) => { failure = event?.error ?? null; };
        socket.onclose = (event) => {
            if (this.#socket !== socket) return;
            this.#socket = null;
            if (!engine.handle) return;
            if (opened) {
                engine.transportClosed(id, now());
            } else {
                const { reason, detail } = openingFailure(failure, event, url);
                this.#lastConnectionError = this.#error(this.#rt.errcNumber(reason), detail, 'connection');
                engine.transportClosed(id, now(), reason, detail);
            }
            this.#drain();
        };
    }

    #closeSocket() {
        const socket = this.#socket;
        this.#socket = null;
        if (socket && socket.readyState <= SOCKET_OPEN) socket.close(1000);
    }

    #settle(ev, error) {
        const pending = this.#pending.get(ev.id);
        if (!pending) return false;
        this.#pending.delete(ev.id);
        if (error) pending.reject(error);
        else pending.resolve(ev);
        return true;
    }

    #dispatch(ev) {
        switch (ev.kind) {
            case 'state_changed': return this.#onState(ev);
            case 'message': {
                const entry = this.#subscriptions.get(ev.subscription);
                if (!entry) return;
                try {
                    entry.handler(new Message(ev, this.#isJson(ev), (ev.flags & this.#rt.replayedFlag) !== 0,
                        entry.subscription));
                } catch (error) {
                    this.#reportHandlerError(error, 'message');
                }
                return;
            }
            case 'gap':
            case 'epoch_changed': {
                const epochChanged = ev.kind === 'epoch_changed';
                this.#emit('gap', {
                    channel: ev.name,
                    epoch: ev.epoch,
                    seq: ev.seq,
                    count: epochChanged ? null : ev.count,
                    epochChanged,
                    subscription: this.#subscriptions.get(ev.subscription)?.subscription,
                });
                return;
            }
            case 'ack':
            case 'response':
            case 'service_list':
            case 'presence':
            case 'token_refreshed':
                if (ev.endsOperation) this.#settle(ev, null);
                return;
            case 'stream_item':
                this.#streams.get(ev.id)?.push(this.#payload(ev));
                return;
            case 'stream_end': {
                const stream = this.#streams.get(ev.id);
                this.#streams.delete(ev.id);
                stream?.end();
                return;
            }
            case 'error': return this.#onError(ev);
            case 'redirected':
                this.#emit('redirect', { url: ev.name, code: ev.code ? this.#rt.errcName(ev.code) : null });
                return;
            case 'direct':
            case 'broadcast':
                this.#emit(ev.kind, new DirectMessage(ev, this.#isJson(ev)));
                return;
            case 'subscribed': {
                // The router subscribed us (token channels, a backend): its
                // messages go to the Subscription's onmessage, which a
                // listener sets before any of them is dispatched.
                const id = ev.subscription;
                const subscription = new Subscription(id, ev.name, () => this.#unsubscribe(id));
                this.#subscriptions.set(id, { subscription, handler: (m) => subscription.onmessage?.(m) });
                this.#emit(ev.kind, subscription);
                return;
            }
            case 'unsubscribed': {
                const subscription = this.#subscriptions.get(ev.subscription)?.subscription;
                this.#subscriptions.delete(ev.subscription);
                this.#emit(ev.kind, { subscription, reason: ev.code ? this.#rt.errcName(ev.code) : null });
                return;
            }
            case 'join':
            case 'leave': {
                const [member] = ev.members;
                this.#emit(ev.kind, {
                    channel: ev.name, ...member, subscription: this.#subscriptions.get(ev.subscription)?.subscription,
                });
                return;
            }
            default:
                return;  // welcome (see sessionId); backend-only kinds
        }
    }

    #onError(ev) {
        const error = this.#error(ev.code, ev.text, ev.op);
        if (ev.op === 'connection') {
            this.#lastConnectionError = error;
            this.#emit('error', error);
            return;
        }
        // The engine says what ended: the table entries go, nothing else is judged here.
        if (ev.endsSubscription) this.#subscriptions.delete(ev.subscription);
        const stream = ev.endsOperation ? this.#streams.get(ev.id) : undefined;
        if (stream) {
            this.#streams.delete(ev.id);
            stream.fail(error);
            return;
        }
        if (!(ev.endsOperation && this.#settle(ev, error))) this.#emit('error', error);
    }

    #onState(ev) {
        const reason = ev.code ? this.#rt.errcName(ev.code) : null;
        this.#emit('state', {
            state: ev.state,
            previous: ev.previous,
            reason,
            detail: ev.text || null,
            retryInMs: ev.state === 'backoff' ? ev.count : null,
            url: ev.name || null,
        });
        if (ev.state === 'ready' && !this.#everReady) {
            this.#everReady = true;
            this.#stopWaiting?.();
            this.#ready.resolve(this);
            return;
        }
        // Without reconnect: a lost connection is the end, and so is, before
        // the first connection, a round of failed attempts (one per router of
        // the list; the engine's seq says how many the round has left).
        const noMoreTries = ev.state === 'backoff' && this.#reconnect === false &&
            (this.#everReady || ev.seq === 0);
        const givesUp = ev.state === 'failed' || ev.state === 'awaiting_token' || noMoreTries;
        if (!this.#everReady && givesUp) {
            const error = this.#lastConnectionError ??
                this.#error(ev.code || this.#rt.errcNumber('not_connected'), `could not connect (${ev.state})`, 'connection');
            this.#lastConnectionError = error;
            this.close();
        } else if (noMoreTries) {
            this.close();
        }
    }
}
