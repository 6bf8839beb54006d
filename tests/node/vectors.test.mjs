// The golden vectors (tests/vectors) through the wasm module the package
// ships: the browser encodes and decodes exactly the bytes the native
// router and backends do.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { loadCodec } from './support/codec.mjs';

const vectorsDir = new URL('../vectors/', import.meta.url);
const frames = JSON.parse(readFileSync(new URL('frames.json', vectorsDir), 'utf8'));
const badFrames = JSON.parse(readFileSync(new URL('bad_frames.json', vectorsDir), 'utf8'));
const codec = await loadCodec();

const BODY_KINDS = new Set(['hello', 'welcome', 'register_service', 'service_list', 'routers', 'presence_list', 'join', 'leave']);
const fromHex = (hex) => Uint8Array.from(Buffer.from(hex, 'hex'));
const toHex = (bytes) => Buffer.from(bytes).toString('hex');

function expectedPayload(f) {
    return 'payload_hex' in f ? fromHex(f.payload_hex) : new TextEncoder().encode(f.payload_text);
}

test('frames.json has vectors for the wasm build to check', () => {
    assert.equal(frames.protocol_version, 1);
    assert.ok(frames.vectors.length >= 20, `only ${frames.vectors.length} vectors`);
    assert.ok(badFrames.vectors.length >= 10, `only ${badFrames.vectors.length} bad vectors`);
});

for (const v of frames.vectors) {
    test(`decode ${v.name}`, () => {
        const { frames: decoded, error } = codec.decodeBatch(fromHex(v.hex));
        assert.equal(error, null);
        assert.equal(decoded.length, v.frames.length);
        v.frames.forEach((want, i) => {
            const got = decoded[i];
            for (const field of ['kind', 'flags', 'id', 'name', 'epoch', 'seq', 'count', 'deadline_ms', 'credit', 'code']) {
                assert.equal(got[field], want[field], `frame ${i} ${field}`);
            }
            assert.equal(toHex(got.payload), toHex(expectedPayload(want)), `frame ${i} payload`);
            if (BODY_KINDS.has(want.kind)) {
                assert.deepEqual(codec.decodeBody(want.kind, got.payload), { body: want.body }, `frame ${i} body`);
            }
            if (want.options) {
                const { message_text: messageText, message_hex: messageHex, ...options } = want.options;
                const message = messageHex ?? toHex(new TextEncoder().encode(messageText));
                assert.deepEqual(codec.decodePublishOptions(got.flags, got.payload),
                    { options: { ...options, message_hex: message } }, `frame ${i} options`);
            }
        });
    });

    test(`encode ${v.name}`, () => {
        const parts = v.frames.map((f) => codec.encode({ ...f, payload: expectedPayload(f) }));
        assert.equal(parts.map(toHex).join(''), v.hex);
    });
}

for (const v of badFrames.vectors) {
    test(`reject ${v.name} (${v.error})`, () => {
        const { frames: decoded, error } = codec.decodeBatch(fromHex(v.hex), v.limits ?? {});
        if (v.stage === 'batch') {
            assert.equal(error, v.error);
            assert.equal(decoded.length, v.frames_before_error);
        } else {
            assert.equal(v.stage, 'body');
            assert.equal(error, null);
            assert.equal(decoded.length, 1);
            const [f] = decoded;
            const result = f.kind === 'publish' ? codec.decodePublishOptions(f.flags, f.payload)
                : codec.decodeBody(f.kind, f.payload);
            assert.deepEqual(result, { error: v.error });
        }
    });
}
