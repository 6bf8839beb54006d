// Starts the real hyperstreams-router on free loopback ports and stops it by
// pid. The binary: $HYPERSTREAMS_ROUTER, else the first one built by a
// native preset (native-asan first: ./test.sh builds it before npm test).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const PRESETS = ['native-asan', 'native-debug', 'native-release'];
const READY = /hyperstreams-router ready http=(\S+) ws=(\S+) backend=(\S+) admin=(\S+)/;

/** A program of the native build: $`envVar`, else build/<preset>/`path`. */
export function nativeBinary(path, envVar) {
    if (process.env[envVar]) return process.env[envVar];
    for (const preset of PRESETS) {
        const candidate = `${root}build/${preset}/${path}`;
        if (existsSync(candidate)) return candidate;
    }
    throw new Error(`${path} not found: build a native preset or set ${envVar}`);
}

export function routerBinary() {
    return nativeBinary('native/router/hyperstreams-router', 'HYPERSTREAMS_ROUTER');
}

/**
 * A running router: { url (ws://.../ws), http, backend, admin (/metrics, /status), pid, stop(), kill(), output() }.
 * `listen` defaults to a free port; pass the previous router's `http` to restart in place.
 */
export function startRouter({ listen = '127.0.0.1:0', args = [] } = {}) {
    const child = spawn(routerBinary(),
        ['--listen', listen, '--backend', 'tcp://127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--threads', '1',
            ...args],
        { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    // After 'exit', once its output is all read: a leak report is printed at exit.
    const closed = new Promise((resolve) => child.once('close', resolve));
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => fail(new Error('router did not become ready in 10 s')), 10_000);
        const fail = (error) => {
            clearTimeout(timer);
            child.kill('SIGKILL');
            reject(new Error(`${error.message}\n${output}`));
        };
        let ready = false;
        const onData = (chunk) => {
            output += chunk;
            const m = ready ? null : READY.exec(output);
            if (!m) return;
            ready = true;
            clearTimeout(timer);
            resolve({
                http: m[1],
                url: m[2],
                backend: m[3],
                admin: m[4],
                pid: child.pid,
                output: () => output,
                exited,
                // SIGTERM: the router drains (goodbye or redirect to clients) and exits.
                // Throws if it reported a sanitizer finding (./test.sh runs the ASan build).
                async stop() {
                    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
                    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
                    const result = await exited;
                    clearTimeout(killer);
                    await closed;
                    throwOnSanitizerReport('hyperstreams-router', output);
                    return result;
                },
                // SIGKILL: a crash, as the clients see it.
                async kill() {
                    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
                    const result = await exited;
                    await closed;
                    throwOnSanitizerReport('hyperstreams-router', output);
                    return result;
                },
            });
        };
        child.stdout.setEncoding('utf8');
        child.stderr.setEncoding('utf8');
        child.stdout.on('data', onData);
        child.stderr.on('data', (chunk) => { output += chunk; });
        child.once('error', fail);
        exited.then(({ code, signal }) => fail(new Error(`router exited early (code ${code}, signal ${signal})`)));
    });
}

/** What AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer print when they find something. */
const SANITIZER_REPORT = /ERROR: (?:Address|Leak)Sanitizer|runtime error: /;

/** Throws with the whole output if `program`'s output holds a sanitizer's report. */
export function throwOnSanitizerReport(program, output) {
    if (SANITIZER_REPORT.test(output)) throw new Error(`${program} reported a sanitizer finding:\n${output}`);
}

/** A loopback port nothing listens on (it was free a moment ago): a router that is down. */
export async function closedPort() {
    const server = createServer();
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address();
    await new Promise((resolve) => server.close(resolve));
    return port;
}
