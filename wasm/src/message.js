// Payloads in and out: what a user passes as `data`, what a handler receives.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// frame_flags::json and frame_flags::replayed of shared/include/hyperstreams/frame.hpp.
export const JSON_FLAG = 0x01;
const REPLAYED_FLAG = 0x08;

/**
 * `data` as payload bytes and frame flags: bytes as they are, a string as
 * UTF-8 text, anything else as JSON (flagged, so tools can render it).
 */
export function encodePayload(data) {
    if (data instanceof Uint8Array) return { bytes: data, flags: 0 };
    if (data instanceof ArrayBuffer) return { bytes: new Uint8Array(data), flags: 0 };
    if (ArrayBuffer.isView(data)) {
        return { bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), flags: 0 };
    }
    if (typeof data === 'string') return { bytes: encoder.encode(data), flags: 0 };
    const json = JSON.stringify(data);
    if (json === undefined) throw new TypeError(`@hyperstreams/client: cannot send ${typeof data} as data`);
    return { bytes: encoder.encode(json), flags: JSON_FLAG };
}

/** A received payload: the bytes, and the text and JSON decoded on first use. */
export class Payload {
    #text;
    #json;
    #parsed = false;

    constructor(bytes, flags) {
        /** @type {Uint8Array} */
        this.bytes = bytes;
        /** True when the sender marked the payload as JSON. */
        this.isJson = (flags & JSON_FLAG) !== 0;
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
    constructor(event, subscription) {
        super(event.payload, event.flags);
        this.channel = event.name;
        this.epoch = event.epoch;
        this.seq = event.seq;
        /** Delivered from the channel's history (a resume), not live. */
        this.replayed = (event.flags & REPLAYED_FLAG) !== 0;
        this.subscription = subscription;
    }
}

/** A direct message or a broadcast: `from` is the sender's address. */
export class DirectMessage extends Payload {
    constructor(event) {
        super(event.payload, event.flags);
        this.from = event.name;
    }
}
