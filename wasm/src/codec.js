// The frame codec of the wasm module, for tests and tools: decode a
// transport message into frames, encode one frame, decode a control body.
// Field names follow tests/vectors/README.md.
import { runtimeOf } from './engine.js';
import { loadModule } from './load.js';

// Field order of frame_view in wasm/codec_bindings.cpp.
const FRAME_FIELDS = 14;

export async function loadCodec(options = {}) {
    const mod = await loadModule(options);
    const rt = runtimeOf(mod);
    const kinds = new Map();  // name -> number
    const kindNames = [];
    for (let k = 0; k < 256; k++) {
        const name = rt.stringAt(mod._hs_kind_name(k));
        kindNames[k] = name;
        if (name !== 'unknown') kinds.set(name, k);
    }
    const errorCell = () => mod._malloc(4);

    return {
        kindNames,
        errcName: (code) => rt.errcName(code),

        /** { frames, error } where error is an errc name or null. */
        decodeBatch(bytes, limits = {}) {
            rt.put(bytes);
            mod._hs_codec_decode_begin(bytes.length, limits.max_payload ?? 1048576, limits.max_frames ?? 65536);
            const frames = [];
            for (let p = mod._hs_codec_decode_next(); p !== 0; p = mod._hs_codec_decode_next()) {
                const u32 = mod.HEAPU32;
                const f = u32.subarray(p >>> 2, (p >>> 2) + FRAME_FIELDS);
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
                    name: rt.text(f[10], f[11]),
                    payload: rt.bytes(f[12], f[13]),
                });
            }
            const code = mod._hs_codec_decode_error();
            return { frames, error: code ? rt.errcName(code) : null };
        },

        /** The bytes of one frame; throws with the errc name when it cannot be encoded. */
        encode(frame) {
            const [nameLen, payloadLen] = rt.put(frame.name ?? '', frame.payload ?? new Uint8Array());
            const seq = BigInt(frame.seq ?? 0);
            const cell = errorCell();
            try {
                const pair = mod._hs_codec_encode(kinds.get(frame.kind) ?? 0, frame.flags ?? 0, frame.id ?? 0,
                    nameLen, payloadLen, frame.epoch ?? 0, Number(seq & 0xffffffffn), Number(seq >> 32n),
                    frame.count ?? 0, frame.deadline_ms ?? 0, frame.credit ?? 0, frame.code ?? 0, cell);
                if (pair === 0) throw new Error(rt.errcName(mod.HEAPU32[cell >>> 2]));
                const u32 = mod.HEAPU32;
                return rt.bytes(u32[pair >>> 2], u32[(pair >>> 2) + 1]);
            } finally {
                mod._free(cell);
            }
        },

        /** The decoded control body of a hello, welcome, register_service or service_list payload. */
        decodeBody(kind, payload) {
            rt.put(payload);
            const cell = errorCell();
            try {
                const pair = mod._hs_codec_body_json(kinds.get(kind) ?? 0, payload.length, cell);
                if (pair === 0) return { error: rt.errcName(mod.HEAPU32[cell >>> 2]) };
                return { body: JSON.parse(rt.stringAt(pair)) };
            } finally {
                mod._free(cell);
            }
        },

        /** Bytes of wasm memory: to watch for leaks. */
        memoryBytes: () => mod.HEAPU8.length,
        /** Client engines alive in wasm memory (created, not yet freed). */
        liveClients: () => mod._hs_live_clients(),
    };
}
