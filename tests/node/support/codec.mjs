// The frame codec of the test build of the wasm module, for tests and tools:
// decode a transport message into frames, encode one frame, decode a control
// body, and watch the module's memory and live engines. Field names follow
// tests/vectors/README.md.
//
// hyperstreams-test.wasm is the shipped engine, compiled the same way, plus
// the exports of wasm/codec_bindings.cpp (wasm/CMakeLists.txt); the package
// never ships it. wasm/build.mjs gives its exports the short names of the
// shipped module's (<build>/npm-test/). loadCodec() hands it to the package
// in place of hyperstreams.wasm, so that the clients of the test and the
// codec share one module (one transfer buffer, one count of live engines).
// The package loads one module per process, so loadCodec() must come before
// the process's first connect() or preload().
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { preload } from '../../../dist/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const testDir = resolve(root, process.env.HYPERSTREAMS_WASM_BUILD_DIR ?? 'build/wasm', 'npm-test');

// Field order of frame_view in wasm/codec_bindings.cpp.
const FRAME_FIELDS = 14;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

let loading = null;

export function loadCodec() {
    loading ??= instantiateTestBuild().then(codecOf);
    return loading;
}

// The package instantiates its module with WebAssembly.instantiate when it
// is given the bytes: watch that one call for the instance it makes.
async function instantiateTestBuild() {
    const instantiate = WebAssembly.instantiate;
    let instance = null;
    WebAssembly.instantiate = async (...args) => {
        const result = await instantiate.apply(WebAssembly, args);
        instance = result.instance;
        return result;
    };
    try {
        await preload({ wasmBinary: readFileSync(resolve(testDir, 'hyperstreams-test.wasm')) });
    } finally {
        WebAssembly.instantiate = instantiate;
    }
    if (!instance) {
        throw new Error('loadCodec() came after the package had loaded its module: call it before the first connect()');
    }
    // The exports by the names of wasm/bindings.cpp and codec_bindings.cpp.
    const shortNames = JSON.parse(readFileSync(resolve(testDir, 'short-names.json'), 'utf8'));
    const byName = { ...instance.exports };
    for (const [name, short] of Object.entries(shortNames)) byName[name] = instance.exports[short];
    return byName;
}

function codecOf(mod) {
    const u8 = () => new Uint8Array(mod.memory.buffer);
    const u32 = () => new Uint32Array(mod.memory.buffer);
    const text = (ptr, len) => decoder.decode(u8().subarray(ptr, ptr + len));
    const bytes = (ptr, len) => u8().slice(ptr, ptr + len);
    const pair = (p) => [u32()[p >>> 2], u32()[(p >>> 2) + 1]];
    const stringAt = (p) => text(...pair(p));
    // Strings and byte arrays back to back in the transfer buffer; their lengths.
    const put = (...parts) => {
        const encoded = parts.map((p) => (typeof p === 'string' ? encoder.encode(p) : p));
        let ptr = mod.hs_buffer(encoded.reduce((n, p) => n + p.length, 0));
        const heap = u8();
        return encoded.map((p) => {
            heap.set(p, ptr);
            ptr += p.length;
            return p.length;
        });
    };
    const errcName = (code) => stringAt(mod.hs_errc_name(code));

    const kinds = new Map();  // name -> number
    const kindNames = [];
    for (let k = 0; k < 256; k++) {
        const name = stringAt(mod.hs_kind_name(k));
        kindNames[k] = name;
        if (name !== 'unknown') kinds.set(name, k);
    }

    return {
        kindNames,
        errcName,

        /** { frames, error } where error is an errc name or null; `limits` overrides the engine's defaults. */
        decodeBatch(input, limits = {}) {
            const [len] = put(input);
            mod.hs_codec_decode_begin(len, limits.max_payload !== undefined, limits.max_payload ?? 0,
                limits.max_frames !== undefined, limits.max_frames ?? 0);
            const frames = [];
            for (let p = mod.hs_codec_decode_next(); p !== 0; p = mod.hs_codec_decode_next()) {
                const f = u32().subarray(p >>> 2, (p >>> 2) + FRAME_FIELDS);
                frames.push({
                    kind: kindNames[f[0]],
                    flags: f[1],
                    id: f[2],
                    epoch: f[3],
                    seq: (BigInt(f[5]) << 32n | BigInt(f[4])).toString(),
                    count: f[6],
                    deadline_ms: f[7],
                    credit: f[8],
                    code: f[9],
                    name: text(f[10], f[11]),
                    payload: bytes(f[12], f[13]),
                });
            }
            const code = mod.hs_codec_decode_error();
            return { frames, error: code ? errcName(code) : null };
        },

        /** The bytes of one frame; throws with the errc name when it cannot be encoded. */
        encode(frame) {
            const [nameLen, payloadLen] = put(frame.name ?? '', frame.payload ?? new Uint8Array());
            const seq = BigInt(frame.seq ?? 0);
            const p = mod.hs_codec_encode(kinds.get(frame.kind) ?? 0, frame.flags ?? 0, frame.id ?? 0,
                nameLen, payloadLen, frame.epoch ?? 0, Number(seq & 0xffffffffn), Number(seq >> 32n),
                frame.count ?? 0, frame.deadline_ms ?? 0, frame.credit ?? 0, frame.code ?? 0);
            if (p === 0) throw new Error(errcName(mod.hs_codec_error()));
            return bytes(...pair(p));
        },

        /** The decoded control body of a hello, welcome, register_service or service_list payload. */
        decodeBody(kind, payload) {
            const [len] = put(payload);
            const p = mod.hs_codec_body_json(kinds.get(kind) ?? 0, len);
            if (p === 0) return { error: errcName(mod.hs_codec_error()) };
            return { body: JSON.parse(stringAt(p)) };
        },

        /** The options block and message of a publish payload with `flags`. */
        decodePublishOptions(flags, payload) {
            const [len] = put(payload);
            const p = mod.hs_codec_publish_options_json(flags, len);
            if (p === 0) return { error: errcName(mod.hs_codec_error()) };
            return { options: JSON.parse(stringAt(p)) };
        },

        /** The numbers the engine gives the JS layer (hs_constant), by name. */
        constants() {
            const constants = new Map();
            for (let i = 0, p; (p = mod.hs_constant(i)) !== 0; i++) {
                const [ptr, len] = pair(p);
                constants.set(text(ptr, len), u32()[(p >>> 2) + 2]);
            }
            return constants;
        },
        /** The engine's name of a slow-consumer policy value. */
        policyName: (value) => stringAt(mod.hs_policy_name(value)),
        /** The engine's number of an error code's name; 0 for none. */
        errcNumber: (name) => mod.hs_errc_number(put(name)[0]),

        /** Bytes of wasm memory: to watch for leaks. */
        memoryBytes: () => mod.memory.buffer.byteLength,
        /** Client engines alive in wasm memory (created, not yet freed). */
        liveClients: () => mod.hs_live_clients(),
    };
}
