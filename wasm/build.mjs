// Assembles dist/, exactly what the npm package ships: the JS layer of
// wasm/src bundled and minified into one module (esbuild), its declarations,
// and hyperstreams.wasm from the `wasm` CMake preset's build (or
// $HYPERSTREAMS_WASM_BUILD_DIR). One file instead of six saves a sixth of
// the gzipped JS (docs/BENCHMARKS.md, "The npm package's size"), and the
// package exports nothing but its entry point, so nobody imports the others.
//
// The C ABI's exports (hs_*, wasm/bindings.cpp) get one- or two-letter names
// in both the JS and the module, as Emscripten's own glue does. The JS must
// call every hs_ export of the module and no other. The test build of the
// module (hyperstreams-test.wasm, never shipped) gets the same names, and
// goes with the table of them to <build>/npm-test/ for tests/node/support/codec.mjs.
//   node wasm/build.mjs
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

import { exportNames, renameExports } from './wasm-exports.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = resolve(root, process.env.HYPERSTREAMS_WASM_BUILD_DIR ?? 'build/wasm');
const dist = join(root, 'dist');
const source = join(root, 'wasm', 'src');

const wasm = join(buildDir, 'wasm', 'hyperstreams.wasm');
const testWasm = join(buildDir, 'wasm', 'hyperstreams-test.wasm');
const testDir = join(buildDir, 'npm-test');

function fail(message) {
    console.error(`wasm/build.mjs: ${message}`);
    process.exit(1);
}
if (!existsSync(wasm)) {
    fail(`${wasm} is missing: build the wasm preset first ` +
        '(cmake --preset wasm && cmake --build --preset wasm --target hyperstreams_wasm)');
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);
const bundle = join(dist, 'index.js');
const { mangleCache: shortNames } = await build({
    entryPoints: [join(source, 'index.js')],
    outfile: bundle,
    bundle: true,
    format: 'esm',
    // Private fields and the rest of ES2022 as written: every browser with
    // WebAssembly.instantiateStreaming and Node >= 20 run them, and lowering
    // them would add code.
    target: 'es2022',
    minify: true,
    // node:fs is imported at run time in Node only (load.js); left as it is.
    external: ['node:*'],
    mangleProps: /^hs_/,
    mangleCache: {},
    logLevel: 'warning',
});
// Minifying drops every comment, also those that tell bundlers to leave
// load.js's import of node:fs alone (Node only, and behind a variable so that
// they do not try to resolve it): put them back on the one dynamic import.
const code = readFileSync(bundle, 'utf8');
const imports = code.match(/\bimport\(\w+\)/g) ?? [];
if (imports.length !== 1) fail(`expected one dynamic import in the bundle, found ${imports.length}`);
writeFileSync(bundle, code.replace(/\bimport\((\w+)\)/, 'import(/* @vite-ignore */ /* webpackIgnore: true */ $1)'));
copyFileSync(join(source, 'index.d.ts'), join(dist, 'index.d.ts'));

const module = readFileSync(wasm);
const cabi = exportNames(module).filter((name) => name.startsWith('hs_'));
const uncalled = cabi.filter((name) => !Object.hasOwn(shortNames, name));
if (uncalled.length > 0) fail(`the module exports what the JS layer never calls: ${uncalled.join(', ')}`);
const missing = Object.keys(shortNames).filter((name) => !cabi.includes(name));
if (missing.length > 0) fail(`the JS layer calls what the module does not export: ${missing.join(', ')}`);
writeFileSync(join(dist, 'hyperstreams.wasm'), renameExports(module, shortNames));

rmSync(testDir, { recursive: true, force: true });
if (existsSync(testWasm)) {
    mkdirSync(testDir);
    writeFileSync(join(testDir, 'hyperstreams-test.wasm'), renameExports(readFileSync(testWasm), shortNames));
    writeFileSync(join(testDir, 'short-names.json'), `${JSON.stringify(shortNames, null, 2)}\n`);
}
console.log(`wasm/build.mjs: dist/ from ${buildDir}/wasm and wasm/src`);
