// npm always packs the README.md at the package root, and the package root
// is the repository's, whose README is about the router, CMake and the
// tests. Around `npm pack` and `npm publish` (the prepack and postpack
// scripts), the package's own README, wasm/README.md, stands in for it:
//   node wasm/readme.mjs package      README.md becomes wasm/README.md; the
//                                     repository's waits in build/npm-pack/
//   node wasm/readme.mjs repository   the repository's README.md comes back
// A pack that failed between the two (npm runs no postpack then) leaves the
// repository's README waiting; either command puts it back first.
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const readme = join(root, 'README.md');
const waiting = join(root, 'build/npm-pack/README.repository.md');

function restore() {
    if (!existsSync(waiting)) return;
    copyFileSync(waiting, readme);
    rmSync(waiting);
}

const command = process.argv[2];
if (command === 'package') {
    restore();
    mkdirSync(dirname(waiting), { recursive: true });
    copyFileSync(readme, waiting);
    copyFileSync(join(root, 'wasm/README.md'), readme);
} else if (command === 'repository') {
    restore();
} else {
    console.error('usage: node wasm/readme.mjs package|repository');
    process.exit(1);
}
