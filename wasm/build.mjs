// Assembles dist/, the directory the npm package ships, from the wasm build
// (hyperstreams.js + hyperstreams.wasm of the `wasm` CMake preset, or of
// $HYPERSTREAMS_WASM_BUILD_DIR) and the hand-written layer in wasm/src.
//   node wasm/build.mjs
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = resolve(root, process.env.HYPERSTREAMS_WASM_BUILD_DIR ?? 'build/wasm');
const dist = join(root, 'dist');
const source = join(root, 'wasm', 'src');

const built = ['hyperstreams.js', 'hyperstreams.wasm'].map((f) => join(buildDir, 'wasm', f));
for (const file of built) {
    if (!existsSync(file)) {
        console.error(`wasm/build.mjs: ${file} is missing: build the wasm preset first ` +
            '(cmake --preset wasm && cmake --build --preset wasm --target hyperstreams_wasm)');
        process.exit(1);
    }
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);
for (const file of built) copyFileSync(file, join(dist, file.slice(file.lastIndexOf('/') + 1)));
for (const file of readdirSync(source)) {
    if (file.endsWith('.js') || file.endsWith('.d.ts')) copyFileSync(join(source, file), join(dist, file));
}
console.log(`wasm/build.mjs: dist/ from ${buildDir}/wasm and wasm/src`);
