// The numbers and names the JS layer takes from the engine (through the
// exports of wasm/bindings.cpp; the JS copies none) are those the protocol
// and the package document: the flag bits, the slow-consumer policies and the
// error codes of docs/PROTOCOL.md, the defaults and the policy names of the
// package's declarations (index.d.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { loadCodec } from './support/codec.mjs';

const protocol = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');
const declarations = readFileSync(new URL('../../dist/index.d.ts', import.meta.url), 'utf8');
const codec = await loadCodec();
const constants = codec.constants();

/** The text of PROTOCOL.md's section `## N. Title`, up to the next `## `. */
function section(title) {
    const start = protocol.indexOf(`\n## ${title}\n`);
    assert.ok(start >= 0, `PROTOCOL.md has no section ${title}`);
    const end = protocol.indexOf('\n## ', start + 1);
    return protocol.slice(start, end < 0 ? undefined : end);
}

/** Rows `| value | \`name\` | ...` of the tables in `text`, as [value, name]. */
function rows(text, value = '\\d+') {
    return [...text.matchAll(new RegExp(`^\\| (${value}) \\| \`(\\w+)\` \\|`, 'gm'))].map((m) => [m[1], m[2]]);
}

test('the flag bits are those of PROTOCOL.md section 6', () => {
    const flags = new Map(rows(section('6. Flags'), '\\d+ \\| `0x[0-9a-f]+`')
        .map(([cells, name]) => [name, Number.parseInt(cells.split('`')[1], 16)]));
    const engineFlags = [...constants].filter(([name]) => name.startsWith('frame_flags::'));
    assert.ok(engineFlags.length >= 2, 'the engine gives the json and replayed bits');
    for (const [name, value] of engineFlags) {
        assert.equal(value, flags.get(name.slice('frame_flags::'.length)), name);
    }
});

test('the slow-consumer policies are those of PROTOCOL.md section 6, named as in index.d.ts', () => {
    const documented = rows(section('6. Flags')).filter(([, name]) => !name.startsWith('0x'));
    assert.equal(documented.length, 4);
    const apiNames = [];
    for (const [value, name] of documented) {
        const apiName = codec.policyName(Number(value));
        // The API's 'default' is the protocol's router_default: the router decides.
        assert.equal(apiName, name === 'router_default' ? 'default' : name, `policy ${value}`);
        apiNames.push(apiName);
    }
    assert.equal(codec.policyName(documented.length), 'unknown');
    const union = /export type SlowConsumerPolicy = ([^;]+);/.exec(declarations)[1];
    assert.deepEqual(union.split('|').map((s) => s.trim().replaceAll("'", '')).sort(), apiNames.sort());
});

test('every error code of PROTOCOL.md section 10 has its number and name in the engine', () => {
    const documented = rows(section('10. Error codes'));
    assert.ok(documented.length > 50, `${documented.length} codes`);
    for (const [code, name] of documented) {
        assert.equal(codec.errcName(Number(code)), name, `code ${code}`);
        assert.equal(codec.errcNumber(name), Number(code), name);
    }
    assert.equal(codec.errcNumber('unknown'), 0);
    assert.equal(codec.errcNumber('no_such_code'), 0);
    const union = /export type ErrorCode =([^;]+);/.exec(declarations)[1];
    const declared = new Set([...union.matchAll(/'(\w+)'/g)].map((m) => m[1]));
    assert.deepEqual(documented.map(([, name]) => name).filter((name) => !declared.has(name)), [],
        'index.d.ts\'s ErrorCode names every code');
});

test('the defaults index.d.ts documents are the engine\'s', () => {
    const engineNames = {
        baseMs: 'client_config::backoff_base_ms',
        maxMs: 'client_config::backoff_max_ms',
        maxRedirects: 'client_config::max_redirects',
        handshakeTimeoutMs: 'client_config::handshake_timeout_ms',
        heartbeatMs: 'client_config::heartbeat_ms',
        outboxLimitBytes: 'client_config::outbox_limit_bytes',
        credit: 'default_stream_credit',
    };
    for (const [option, engineName] of Object.entries(engineNames)) {
        const doc = new RegExp(`Default (\\d+)( MiB)?\\. \\*/\\s*${option}\\?:`).exec(declarations);
        assert.ok(doc, `index.d.ts documents the default of ${option}`);
        const documented = Number(doc[1]) * (doc[2] ? 2 ** 20 : 1);
        assert.equal(constants.get(engineName), documented, option);
    }
});
