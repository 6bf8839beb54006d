// The presence bodies (docs/PROTOCOL.md section 8), decoded here rather than
// in wasm: only a page that asks for presence pays for it. Bytes that are
// not one give null, so that a bad answer is a named error and never an
// exception in the event loop.
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The `n` members ({ address, subject, name }) from offset `at` of `bytes`
 * to its end: a join or leave body (1 at 0), a presence_list's (after its
 * count and length); null when malformed.
 */
export function decodeMembers(bytes, at, n) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = [];
    try {
        for (; n > 0; n--) {
            const m = {};
            for (const key of ['address', 'subject', 'name']) {
                const end = at + 2 + view.getUint16(at, true);
                m[key] = utf8.decode(bytes.subarray(at + 2, end));
                if (end > bytes.length) return null;
                at = end;
            }
            out.push(m);
        }
    } catch {
        return null;
    }
    return at === bytes.length ? out : null;
}
