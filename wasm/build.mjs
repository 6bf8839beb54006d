// Assembles dist/, exactly what the npm package ships: the JS layer of
// wasm/src bundled and minified into one module (esbuild), its declarations,
// and hyperstreams.wasm from the `wasm` CMake preset's build (or
// $HYPERSTREAMS_WASM_BUILD_DIR). One file instead of six saves a sixth of
// the gzipped JS (docs/BENCHMARKS.md, "The npm package's size"), and the
// package exports nothing but its entry point, so nobody imports the others.
//   node wasm/build.mjs
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = resolve(root, process.env.HYPERSTREAMS_WASM_BUILD_DIR ?? 'build/wasm');
const dist = join(root, 'dist');
const source = join(root, 'wasm', 'src');

const wasm = join(buildDir, 'wasm', 'hyperstreams.wasm');
if (!existsSync(wasm)) {
    console.error(`wasm/build.mjs: ${wasm} is missing: build the wasm preset first ` +
        '(cmake --preset wasm && cmake --build --preset wasm --target hyperstreams_wasm)');
    process.exit(1);
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);
const bundle = join(dist, 'index.js');
await build({
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
    logLevel: 'warning',
});
// Minifying drops every comment, also those that tell bundlers to leave
// load.js's import of node:fs alone (Node only, and behind a variable so that
// they do not try to resolve it): put them back on the one dynamic import.
const code = readFileSync(bundle, 'utf8');
const imports = code.match(/\bimport\(\w+\)/g) ?? [];
if (imports.length !== 1) {
    console.error(`wasm/build.mjs: expected one dynamic import in the bundle, found ${imports.length}`);
    process.exit(1);
}
writeFileSync(bundle, code.replace(/\bimport\((\w+)\)/, 'import(/* @vite-ignore */ /* webpackIgnore: true */ $1)'));
copyFileSync(join(source, 'index.d.ts'), join(dist, 'index.d.ts'));
copyFileSync(wasm, join(dist, 'hyperstreams.wasm'));
console.log(`wasm/build.mjs: dist/ from ${buildDir}/wasm and wasm/src`);
