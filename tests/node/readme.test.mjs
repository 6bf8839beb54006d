// Every example of README.md and wasm/README.md runs as written, so the
// documentation cannot drift from the product: the ```js blocks run in Node
// (tests/node/support/doc-example.mjs) against the real router, with the
// factory simulator behind it; their URLs (the README's default address,
// the package README's example host) point to this router, and every
// pattern they subscribe to must match a channel that was published. The
// ```cpp block is native/examples/hello_backend.cpp, which the native tests
// build and run; the ```sh block that makes a token makes one a router in
// tokens mode accepts, with the rights it claims. The other shell blocks are
// commands (building, installing), which ./test.sh and pack.test.mjs run.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

import { connect } from '../../dist/index.js';
import { nativeBinary, startRouter } from './support/router.mjs';
import { waitFor, within } from './support/wait.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
// Inside the package, so that the examples' `import ... from '@hyperstreams/client'` finds it.
const examplesDir = join(root, 'build/doc-examples');
const DOC_URLS = ['ws://127.0.0.1:7070/ws', 'wss://factory.example.com/ws'];

let router;
let simulator;
let observer;
const published = new Set();

/** The fenced blocks of `file` in `language`, in order. */
function blocks(file, language) {
    const text = readFileSync(join(root, file), 'utf8');
    const fence = new RegExp('^```' + language + '\\n([\\s\\S]*?)^```$', 'gm');
    return [...text.matchAll(fence)].map((m) => m[1]);
}

// NATS-style matching, as the router does it.
function matches(pattern, channel) {
    const p = pattern.split('.');
    const c = channel.split('.');
    for (let i = 0; i < p.length; i++) {
        if (p[i] === '>') return c.length > i;
        if (i >= c.length || (p[i] !== '*' && p[i] !== c[i])) return false;
    }
    return p.length === c.length;
}

function runExample(name, code) {
    let source = code;
    for (const url of DOC_URLS) source = source.replaceAll(url, router.url);
    const file = join(examplesDir, `${name}.mjs`);
    writeFileSync(file, source);
    const runner = fileURLToPath(new URL('./support/doc-example.mjs', import.meta.url));
    // Alarms keep coming while it runs, for the examples that wait for one.
    const alarms = setInterval(() => {
        observer.request('factory', 'fault', { line: 'L1', machine: 'M1', kind: 'jam' }).catch(() => {});
    }, 250);
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [runner, file, JSON.stringify({ url: router.url, peer: observer.sessionId })],
            { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (chunk) => { out += chunk; });
        child.stderr.on('data', (chunk) => { out += chunk; });
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.on('exit', (code, signal) => {
            clearTimeout(timer);
            clearInterval(alarms);
            const result = /^example-result (.*)$/m.exec(out);
            if (code !== 0 || !result) reject(new Error(`${name} failed (${code ?? signal}):\n${source}\n---\n${out}`));
            else resolve(JSON.parse(result[1]));
        });
    });
}

before(async () => {
    mkdirSync(examplesDir, { recursive: true });
    // The namespace the presence example reads.
    router = await startRouter({
        args: ['--channels-namespaces', '[{"pattern": "factory.>", "presence": true, "join_leave": true}]'],
    });
    simulator = spawn(nativeBinary('native/simulator/hyperstreams-factory', 'HYPERSTREAMS_FACTORY'),
        ['--router', router.backend, '--lines', '2', '--machines', '2', '--rate', '20', '--jam-every', '0'],
        { stdio: 'ignore' });
    observer = await connect(router.url, { WebSocket, name: 'readme-observer' });
    await observer.subscribe('>', (m) => published.add(m.channel));
    let registered = false;
    await waitFor(() => registered, 'the simulator registering factory', 10_000, async () => {
        registered = (await observer.services()).some((s) => s.name === 'factory');
    });
});

after(async () => {
    await observer?.close();
    simulator?.kill('SIGTERM');
    await router?.stop();
});

for (const file of ['README.md', 'wasm/README.md']) {
    blocks(file, 'js').forEach((code, i) => {
        const name = `${file.replace(/\W+/g, '-')}-${i + 1}`;
        test(`${file}, JavaScript example ${i + 1}, runs as written: ${code.split('\n').find((l) => l.trim())}`, async () => {
            const { patterns } = await runExample(name, code);
            for (const pattern of patterns) {
                await waitFor(() => [...published].some((channel) => matches(pattern, channel)),
                    `a published channel that '${pattern}' matches (seen: ${[...published].sort().join(' ')})`, 5_000);
            }
        });
    });
}

test('README.md\'s C++ example is native/examples/hello_backend.cpp, which test_backend builds and runs', () => {
    assert.deepEqual(blocks('README.md', 'cpp'), [readFileSync(join(root, 'native/examples/hello_backend.cpp'), 'utf8')]);
});

test('README.md\'s token recipe makes a token that a router in tokens mode accepts with the rights it claims', async () => {
    // The recipe signs with openssl dgst (another block makes a certificate for Redis with openssl req).
    const recipes = blocks('README.md', 'sh').filter((b) => b.includes('openssl dgst'));
    assert.equal(recipes.length, 1);
    const dir = mkdtempSync(join(tmpdir(), 'hyperstreams-token-'));
    const tokens = await startRouterWithSecret(dir);
    try {
        const token = execFileSync('bash', ['-c', recipes[0]], { cwd: dir, encoding: 'utf8' }).trim().split('\n').at(-1);
        const client = await within(connect(tokens.url, { WebSocket, token, reconnect: false }), 'the connection');
        await client.subscribe('factory.L1.M1.telemetry', () => {});
        await assert.rejects(client.subscribe('payroll.x', () => {}), (e) => e.code === 'forbidden');
        await client.close();
    } finally {
        await tokens.stop();
        rmSync(dir, { recursive: true, force: true });
    }
});

async function startRouterWithSecret(dir) {
    writeFileSync(join(dir, 'secret.txt'), 'a-secret-of-at-least-thirty-two-bytes\n');
    return startRouter({ args: ['--auth-mode', 'tokens', '--auth-hs256-secret-file', join(dir, 'secret.txt')] });
}
