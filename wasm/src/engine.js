// The raw engine: one client_engine in wasm memory behind a handle, and the
// marshalling of the C ABI in wasm/bindings.cpp. No protocol logic and no
// protocol number here: the names of states, events, operations, policies
// and error codes, the flag bits and the configuration defaults are read
// from the module itself.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Field order of event_view in bindings.cpp.
const EVENT_FIELDS = 23;

const runtimes = new WeakMap();

/** The per-module helpers (name tables, transfer buffer), built once. */
export function runtimeOf(mod) {
    let rt = runtimes.get(mod);
    if (!rt) {
        rt = new Runtime(mod);
        runtimes.set(mod, rt);
    }
    return rt;
}

export class Runtime {
    constructor(mod) {
        this.mod = mod;
        this.eventKinds = this.nameTable((i) => mod.hs_event_name(i));
        this.stateNames = this.nameTable((i) => mod.hs_state_name(i));
        this.operationNames = this.nameTable((i) => mod.hs_operation_name(i));
        /** Slow-consumer policies: the API's name -> the engine's value. */
        this.policies = new Map(this.nameTable((i) => mod.hs_policy_name(i)).map((name, value) => [name, value]));
        this.constants = new Map();
        for (let i = 0, p; (p = mod.hs_constant(i)) !== 0; i++) {
            const u32 = mod.HEAPU32;
            this.constants.set(this.text(u32[p >>> 2], u32[(p >>> 2) + 1]), u32[(p >>> 2) + 2]);
        }
        this.jsonFlag = this.constant('frame_flags::json');
        this.replayedFlag = this.constant('frame_flags::replayed');
        this.errcNames = new Map();
        this.errcNumbers = new Map();
    }

    /** A number of the engine by its C++ name ('client_config::heartbeat_ms', ...). */
    constant(name) {
        const value = this.constants.get(name);
        if (value === undefined) throw new Error(`@hyperstreams/client: the wasm module has no constant ${name}`);
        return value;
    }

    /** Names by value, for values 0, 1, ... until the first "unknown". */
    nameTable(nameOf) {
        const names = [];
        for (let i = 0; i < 256; i++) {
            const name = this.stringAt(nameOf(i));
            if (name === 'unknown') break;
            names.push(name);
        }
        return names;
    }

    /** The string of a (pointer, length) pair returned by the module. */
    stringAt(pairPointer) {
        const u32 = this.mod.HEAPU32;
        const p = pairPointer >>> 2;
        return this.text(u32[p], u32[p + 1]);
    }

    text(ptr, len) {
        return len === 0 ? '' : decoder.decode(this.mod.HEAPU8.subarray(ptr, ptr + len));
    }

    bytes(ptr, len) {
        return this.mod.HEAPU8.slice(ptr, ptr + len);
    }

    errcName(code) {
        let name = this.errcNames.get(code);
        if (name === undefined) {
            name = this.stringAt(this.mod.hs_errc_name(code));
            this.errcNames.set(code, name);
        }
        return name;
    }

    /** The number of the error code named `name` (0 for none), asked of the module once. */
    errcNumber(name) {
        let code = this.errcNumbers.get(name);
        if (code === undefined) {
            const [len] = this.put(name);
            code = this.mod.hs_errc_number(len);
            this.errcNumbers.set(name, code);
        }
        return code;
    }

    /** What is wrong with `name` as a channel (or a pattern); '' when it is valid. */
    nameProblem(name, pattern) {
        const [len] = this.put(name);
        return this.stringAt(this.mod.hs_name_problem(pattern ? 1 : 0, len));
    }

    /**
     * Writes `parts` (strings and Uint8Arrays) back to back into the transfer
     * buffer; returns their byte lengths, in order.
     */
    put(...parts) {
        const encoded = parts.map((p) => (typeof p === 'string' ? encoder.encode(p) : p));
        let total = 0;
        for (const p of encoded) total += p.length;
        let ptr = this.mod.hs_buffer(total);
        const heap = this.mod.HEAPU8;  // after hs_buffer: memory may have grown
        const lengths = [];
        for (const p of encoded) {
            heap.set(p, ptr);
            ptr += p.length;
            lengths.push(p.length);
        }
        return lengths;
    }
}

/** One event, copied out of wasm memory. */
export function readEvent(rt, pointer) {
    const u32 = rt.mod.HEAPU32;
    const p = pointer >>> 2;
    const f = u32.subarray(p, p + EVENT_FIELDS);
    return {
        kind: rt.eventKinds[f[0]],
        op: rt.operationNames[f[1]],
        state: rt.stateNames[f[2]],
        previous: rt.stateNames[f[3]],
        flags: f[4],
        code: f[5],
        id: f[6],
        subscription: f[7],
        epoch: f[8],
        seq: f[9] + f[10] * 2 ** 32,
        count: f[11] + f[12] * 2 ** 32,
        name: rt.text(f[13], f[14]),
        method: rt.text(f[15], f[16]),
        text: rt.text(f[17], f[18]),
        payload: rt.bytes(f[19], f[20]),
        endsOperation: f[21] !== 0,
        endsSubscription: f[22] !== 0,
    };
}

/** The client_engine of one client. Every method maps to one C ABI call. */
export class Engine {
    constructor(rt, config) {
        this.rt = rt;
        const m = rt.mod;
        // The URL list as hs_create reads it: one u32 length per URL, then the URLs.
        const urls = config.urls.map((url) => encoder.encode(url));
        const lengths = new DataView(new ArrayBuffer(4 * urls.length));
        urls.forEach((url, i) => lengths.setUint32(4 * i, url.length, true));
        const sizes = rt.put(new Uint8Array(lengths.buffer), ...urls, config.name, config.token);
        const [nameLen, tokenLen] = sizes.slice(-2);
        this.handle = m.hs_create(urls.length, nameLen, tokenLen, config.seed,
            config.backoffBaseMs, config.backoffMaxMs, config.maxRedirects,
            config.handshakeTimeoutMs, config.heartbeatMs, config.outboxLimitBytes);
    }

    destroy() {
        if (this.handle) this.rt.mod.hs_destroy(this.handle);
        this.handle = 0;
    }

    get state() { return this.rt.stateNames[this.rt.mod.hs_state(this.handle)]; }
    get sessionId() { return this.rt.stringAt(this.rt.mod.hs_session_id(this.handle)); }
    get lastError() { return this.rt.mod.hs_last_error(this.handle); }

    start(now) { return this.rt.mod.hs_start(this.handle, now); }
    close(now) { return this.rt.mod.hs_close(this.handle, now); }
    transportOpened(id, now) { this.rt.mod.hs_transport_opened(this.handle, id, now); }
    /** `reason`: a transport code's name ('connection_refused', ...) when the socket says why. */
    transportClosed(id, now, reason = null, detail = '') {
        const [len] = this.rt.put(detail);
        this.rt.mod.hs_transport_closed(this.handle, id, now, reason ? this.rt.errcNumber(reason) : 0, len);
    }

    receive(bytes, now) {
        this.rt.put(bytes);
        return this.rt.mod.hs_receive(this.handle, bytes.length, now);
    }

    /** Milliseconds on the engine's clock, or -1 for none. */
    nextDeadline() { return this.rt.mod.hs_next_deadline(this.handle); }
    handleTimeout(now) { this.rt.mod.hs_handle_timeout(this.handle, now); }

    /** The next event, copied, or null. */
    poll() {
        const p = this.rt.mod.hs_poll(this.handle);
        return p === 0 ? null : readEvent(this.rt, p);
    }

    /** The pending output as a fresh Uint8Array (empty when none), consumed. */
    takeOutput() {
        const m = this.rt.mod;
        const pair = m.hs_output(this.handle) >>> 2;
        const ptr = m.HEAPU32[pair];
        const len = m.HEAPU32[pair + 1];
        if (len === 0) return null;
        const bytes = m.HEAPU8.slice(ptr, ptr + len);
        m.hs_consume_output(this.handle);
        return bytes;
    }

    // Calls returning an operation id: 0 means refused (see lastError).
    subscribe(pattern, policy, since) {
        const [len] = this.rt.put(pattern);
        if (!since) return this.rt.mod.hs_subscribe(this.handle, len, policy, 0, 0, 0, 0);
        return this.rt.mod.hs_subscribe(this.handle, len, policy, 1, since.epoch,
            since.seq % 2 ** 32, Math.floor(since.seq / 2 ** 32));
    }
    unsubscribe(subscription) { return this.rt.mod.hs_unsubscribe(this.handle, subscription); }
    publish(channel, payload, ack, flags, key, ttlS) {
        const [channelLen, payloadLen, keyLen] = this.rt.put(channel, payload, String(key ?? ''));
        return this.rt.mod.hs_publish(this.handle, channelLen, payloadLen, ack ? 1 : 0, flags, keyLen,
            ttlS !== undefined, Number(ttlS));
    }
    request(service, method, payload, timeoutMs, now, flags) {
        const [s, m, p] = this.rt.put(service, method, payload);
        return this.rt.mod.hs_request(this.handle, s, m, p, timeoutMs, now, flags);
    }
    openStream(service, method, payload, credit, timeoutMs, now, flags) {
        const [s, m, p] = this.rt.put(service, method, payload);
        return this.rt.mod.hs_open_stream(this.handle, s, m, p, credit, timeoutMs, now, flags);
    }
    streamConsumed(stream, items) { return this.rt.mod.hs_stream_consumed(this.handle, stream, items); }
    cancel(id) { return this.rt.mod.hs_cancel(this.handle, id); }
    sendDirect(to, payload, ack, flags) {
        const [toLen, payloadLen] = this.rt.put(to, payload);
        return this.rt.mod.hs_send_direct(this.handle, toLen, payloadLen, ack ? 1 : 0, flags);
    }
    broadcast(payload, ack, flags) {
        const [payloadLen] = this.rt.put(payload);
        return this.rt.mod.hs_broadcast(this.handle, payloadLen, ack ? 1 : 0, flags);
    }
    discover() { return this.rt.mod.hs_discover(this.handle); }
    presence(channel) {
        const [len] = this.rt.put(channel);
        return this.rt.mod.hs_presence(this.handle, len);
    }
    refreshToken(token, now) {
        const [len] = this.rt.put(token);
        return this.rt.mod.hs_refresh_token(this.handle, len, now);
    }

    /** The members ({ address, subject, name }) of the presence, join or leave event just polled. */
    members() {
        const m = this.rt.mod;
        const list = [];
        for (let i = 0, n = m.hs_member_count(this.handle); i < n; i++) {
            const [address, subject, name] = [0, 1, 2].map((f) => this.rt.stringAt(m.hs_member_field(this.handle, i, f)));
            list.push({ address, subject, name });
        }
        return list;
    }
    /** Every member of the channel of the presence event just polled (more than members() lists when it was cut). */
    presenceCount() { return this.rt.mod.hs_presence_count(this.handle); }

    /** The service list of the last service_list event. */
    services() {
        const m = this.rt.mod;
        const h = this.handle;
        const list = [];
        const count = m.hs_service_count(h);
        for (let i = 0; i < count; i++) {
            const methods = [];
            const methodCount = m.hs_method_count(h, i);
            for (let j = 0; j < methodCount; j++) {
                methods.push({
                    name: this.rt.stringAt(m.hs_method_name(h, i, j)),
                    kind: this.rt.stringAt(m.hs_method_kind(h, i, j)),
                });
            }
            list.push({
                name: this.rt.stringAt(m.hs_service_name(h, i)),
                instances: m.hs_service_instances(h, i),
                methods,
            });
        }
        return list;
    }
}
