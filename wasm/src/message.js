// Payloads in and out: what a user passes as `data`, what a handler receives.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * `data` as payload bytes and frame flags: bytes as they are, a string as
 * UTF-8 text, anything else as JSON (flagged with `jsonFlag`, the engine's
 * frame_flags::json, so tools can render it).
 */
export function encodePayload(data, jsonFlag) {
    if (data instanceof Uint8Array) return { bytes: data, flags: 0 };
    if (data instanceof ArrayBuffer) return { bytes: new Uint8Array(data), flags: 0 };
    if (ArrayBuffer.isView(data)) {
        return { bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), flags: 0 };
    }
    if (typeof data === 'string') return { bytes: encoder.encode(data), flags: 0 };
    const json = JSON.stringify(data);
    if (json === undefined) throw new TypeError(`@hyperstreams/client: cannot send ${typeof data} as data`);
    return { bytes: encoder.encode(json), flags: jsonFlag };
}

/** A received payload: the bytes, and the text and JSON decoded on first use. */
export class Payload {
    #text;
    #json;
    #parsed = false;

    constructor(bytes, isJson) {
        /** @type {Uint8Array} */
        this.bytes = bytes;
        /** True when the sender marked the payload as JSON. */
        this.isJson = isJson;
    }

    get text() {
        if (this.#text === undefined) this.#text = decoder.decode(this.bytes);
        return this.#text;
    }

    get json() {
        if (!this.#parsed) {
            this.#json = JSON.parse(this.text);
            this.#parsed = true;
        }
        return this.#json;
    }
}

/** A message of a subscription. */
export class Message extends Payload {
    constructor(event, isJson, replayed, subscription) {
        super(event.payload, isJson);
        this.channel = event.name;
        this.epoch = event.epoch;
        this.seq = event.seq;
        /** Delivered from the channel's history (a resume), not live. */
        this.replayed = replayed;
        this.subscription = subscription;
    }
}

/** A direct message or a broadcast: `from` is the sender's address. */
export class DirectMessage extends Payload {
    constructor(event, isJson) {
        super(event.payload, isJson);
        this.from = event.name;
    }
}
