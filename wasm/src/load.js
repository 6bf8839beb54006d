// Loads and instantiates the wasm module once per page or process.
//
// hyperstreams.wasm is a standalone module with no Emscripten JS glue
// (wasm/CMakeLists.txt): this file instantiates it with its two imports and
// hands the engine its exports, the C ABI of wasm/bindings.cpp, with views of
// its memory. It alone decides where the bytes come from:
//   - options.wasmBinary: the bytes themselves;
//   - options.wasmUrl, or options.locateFile('hyperstreams.wasm', defaultUrl);
//   - otherwise new URL('./hyperstreams.wasm', import.meta.url), which
//     bundlers (Vite, webpack 5, Rollup plugins) recognise and copy as an asset.
// A file: URL (Node) is read with node:fs; anything else is fetched.
const WASM_FILE = 'hyperstreams.wasm';

let loading = null;

/**
 * The instantiated module, shared by every client. The options of the first
 * call win; a failed load is forgotten so that a later call can retry.
 */
export function loadModule(options = {}) {
    if (!loading) {
        loading = instantiate(options).catch((error) => {
            loading = null;
            throw error;
        });
    }
    return loading;
}

function wasmLocation(options) {
    const defaultUrl = new URL('./hyperstreams.wasm', import.meta.url);
    if (options.wasmUrl) return new URL(String(options.wasmUrl), defaultUrl);
    if (options.locateFile) return new URL(String(options.locateFile(WASM_FILE, defaultUrl.href)), defaultUrl);
    return defaultUrl;
}

async function wasmBytesOrResponse(options) {
    if (options.wasmBinary) return { bytes: options.wasmBinary };
    const url = wasmLocation(options);
    if (url.protocol === 'file:') {
        // Only reached in Node (browsers never load from file:): hidden from
        // bundlers, which would otherwise try to polyfill node:fs.
        const fsModule = 'node:fs/promises';
        const { readFile } = await import(/* @vite-ignore */ /* webpackIgnore: true */ fsModule);
        return { bytes: await readFile(url) };
    }
    const response = await fetch(url, { credentials: 'same-origin' });
    if (!response.ok) throw new Error(`@hyperstreams/client: cannot load ${url}: HTTP ${response.status}`);
    return { response };
}

async function instantiateFrom(source, imports) {
    if (source.bytes) return WebAssembly.instantiate(source.bytes, imports);
    const { response } = source;
    if (typeof WebAssembly.instantiateStreaming === 'function') {
        try {
            return await WebAssembly.instantiateStreaming(response.clone(), imports);
        } catch {
            // Served without Content-Type: application/wasm: compile from bytes.
        }
    }
    return WebAssembly.instantiate(await response.arrayBuffer(), imports);
}

async function instantiate(options) {
    const source = await wasmBytesOrResponse(options);
    const mod = {};
    const { instance } = await instantiateFrom(source, {
        // Called after the module grew its memory: the old views are detached.
        env: { emscripten_notify_memory_growth: () => memoryViews(mod) },
        // abort(): what the engine calls when it cannot go on (out of memory).
        wasi_snapshot_preview1: {
            proc_exit(code) { throw new Error(`@hyperstreams/client: the wasm module aborted (${code})`); },
        },
    });
    Object.assign(mod, instance.exports);
    memoryViews(mod);
    mod._initialize();
    return mod;
}

function memoryViews(mod) {
    mod.HEAPU8 = new Uint8Array(mod.memory.buffer);
    mod.HEAPU32 = new Uint32Array(mod.memory.buffer);
}
