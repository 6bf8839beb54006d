// The package as a user gets it: `npm pack`, install the tarball into a
// fresh project, run a script there against the real router, and
// type-check a TypeScript usage example against the installed declarations.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { startRouter } from './support/router.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const consumerDir = fileURLToPath(new URL('./consumer/', import.meta.url));
const wsVersion = JSON.parse(readFileSync(join(root, 'node_modules/ws/package.json'), 'utf8')).version;
const SHIPPED = ['dist/hyperstreams.wasm', 'dist/index.d.ts', 'dist/index.js', 'package.json'];
// What a micro-frontend downloads: the JS and the wasm (not the declarations).
const RUNTIME = ['dist/index.js', 'dist/hyperstreams.wasm'];
// The aim of issue 18; docs/BENCHMARKS.md, "The npm package's size".
const GZIPPED_LIMIT = 30 * 1024;

let work;
let tarball;
let packed;
let router;
let repositoryReadme;

before(async () => {
    repositoryReadme = readFileSync(join(root, 'README.md'), 'utf8');
    work = mkdtempSync(join(tmpdir(), 'hyperstreams-pack-'));
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8' });
    packed = JSON.parse(out.slice(out.indexOf('[')))[0];
    tarball = join(work, packed.filename);
    const project = join(work, 'project');
    execFileSync('mkdir', [project]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, `ws@${wsVersion}`],
        { cwd: project, stdio: 'pipe' });
    for (const f of ['consumer.mjs', 'usage.ts', 'tsconfig.json']) copyFileSync(join(consumerDir, f), join(project, f));
    router = await startRouter();
});

after(async () => {
    await router?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
});

test('the tarball holds exactly the built library', () => {
    // npm adds README and LICENSE files by itself.
    const files = packed.files.map((f) => f.path).filter((p) => !/^(README|LICENSE)/i.test(p)).sort();
    assert.deepEqual(files, SHIPPED);
    assert.equal(packed.name, '@hyperstreams/client');
});

test('the tarball\'s README is the package\'s own; the repository keeps its README', () => {
    const shipped = execFileSync('tar', ['-xzOf', tarball, 'package/README.md'], { encoding: 'utf8' });
    assert.equal(shipped, readFileSync(join(root, 'wasm/README.md'), 'utf8'));
    assert.match(shipped, /^# @hyperstreams\/client\n/);
    assert.equal(readFileSync(join(root, 'README.md'), 'utf8'), repositoryReadme);
});

test('the tarball\'s files are those of dist/, byte for byte, so every test of dist/ tests the tarball', () => {
    for (const f of SHIPPED.filter((p) => p.startsWith('dist/'))) {
        const shipped = execFileSync('tar', ['-xzOf', tarball, `package/${f}`]);
        assert.ok(shipped.equals(readFileSync(join(root, f))), `${f} differs from the tarball's`);
    }
});

test('the shipped module has none of the test build\'s exports (the frame codec, the count of live engines)', () => {
    const exportsOf = (bytes) => WebAssembly.Module.exports(new WebAssembly.Module(bytes)).map((e) => e.name);
    const testOnly = /^hs_(codec_|kind_name$|live_clients$)/;
    const testBuild = join(root, process.env.HYPERSTREAMS_WASM_BUILD_DIR ?? 'build/wasm', 'npm-test', 'hyperstreams-test.wasm');
    assert.ok(exportsOf(readFileSync(testBuild)).filter((name) => testOnly.test(name)).length >= 7);
    const shipped = exportsOf(execFileSync('tar', ['-xzOf', tarball, 'package/dist/hyperstreams.wasm']));
    assert.deepEqual(shipped.filter((name) => testOnly.test(name)), []);
});

test('JS + wasm is at most 30 KiB gzipped', () => {
    let gzipped = 0;
    const sizes = RUNTIME.map((f) => {
        const bytes = execFileSync('tar', ['-xzOf', tarball, `package/${f}`]);
        const compressed = gzipSync(bytes, { level: 9 }).length;
        gzipped += compressed;
        return `${f} ${bytes.length} bytes, ${compressed} gzipped`;
    });
    console.log(`tarball ${statSync(tarball).size} bytes; ${sizes.join('; ')}; JS + wasm ${gzipped} bytes gzipped`);
    assert.ok(gzipped <= GZIPPED_LIMIT, `JS + wasm ${gzipped} bytes gzipped, over ${GZIPPED_LIMIT}`);
});

test('installed from the tarball, it talks to the real router in Node', () => {
    const out = execFileSync('node', ['consumer.mjs', router.url], { cwd: join(work, 'project'), encoding: 'utf8', timeout: 30_000 });
    const result = JSON.parse(out.trim().split('\n').at(-1));
    assert.deepEqual(result.received.map((m) => m.text), ['text', '{"n":1}', '\u0001\u0002\u0003']);
    assert.deepEqual(result.received[1].json, { n: 1 });
    assert.deepEqual(result.received[2].bytes, [1, 2, 3]);
    assert.equal(result.position.seq, result.received[2].seq);
    assert.equal(result.refused, 'invalid_argument');
    assert.equal(result.wasmExported, true);
    assert.equal(result.state, 'closed');
});

test('its TypeScript declarations type-check a usage example', () => {
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    execFileSync('node', [tsc, '-p', 'tsconfig.json'], { cwd: join(work, 'project'), encoding: 'utf8', stdio: 'pipe' });
});
