// The export section of a WebAssembly module: read its names, or write the
// module again with some of them renamed (wasm/build.mjs gives the C ABI's
// exports the short names the minified JS calls them by).
//   Binary format: the magic and version (8 bytes), then sections, each an id
//   byte, a LEB128 size and its bytes; the export section (id 7) is a vector
//   of (name, kind byte, LEB128 index), a name being a LEB128 length and UTF-8.

const EXPORT_SECTION = 7;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function readLeb(bytes, offset) {
    let value = 0;
    let shift = 0;
    for (;;) {
        const byte = bytes[offset++];
        value += (byte & 0x7f) * 2 ** shift;
        shift += 7;
        if (byte < 0x80) return [value, offset];
    }
}

function leb(value) {
    const out = [];
    do {
        let byte = value % 128;
        value = Math.floor(value / 128);
        if (value > 0) byte |= 0x80;
        out.push(byte);
    } while (value > 0);
    return out;
}

function sections(bytes) {
    const list = [];
    for (let offset = 8; offset < bytes.length;) {
        const id = bytes[offset];
        const [size, start] = readLeb(bytes, offset + 1);
        list.push({ id, begin: offset, start, end: start + size });
        offset = start + size;
    }
    return list;
}

function exportsOf(bytes, section) {
    const entries = [];
    let [count, offset] = readLeb(bytes, section.start);
    for (; count > 0; count--) {
        const [length, nameStart] = readLeb(bytes, offset);
        const name = decoder.decode(bytes.subarray(nameStart, nameStart + length));
        const [, end] = readLeb(bytes, nameStart + length + 1);  // kind byte, then the index
        entries.push({ name, rest: bytes.subarray(nameStart + length, end) });
        offset = end;
    }
    return entries;
}

/** The export names of `bytes` (a module), in order. */
export function exportNames(bytes) {
    const section = sections(bytes).find((s) => s.id === EXPORT_SECTION);
    return section ? exportsOf(bytes, section).map((e) => e.name) : [];
}

/** `bytes` (a module) with each export named in `renames` ({ old: new }) renamed. */
export function renameExports(bytes, renames) {
    const section = sections(bytes).find((s) => s.id === EXPORT_SECTION);
    const entries = exportsOf(bytes, section);
    const body = [...leb(entries.length)];
    for (const { name, rest } of entries) {
        const renamed = encoder.encode(Object.hasOwn(renames, name) ? renames[name] : name);
        body.push(...leb(renamed.length), ...renamed, ...rest);
    }
    return new Uint8Array([
        ...bytes.subarray(0, section.begin),
        EXPORT_SECTION, ...leb(body.length), ...body,
        ...bytes.subarray(section.end),
    ]);
}
