// Starting and stopping the real binaries for the browser tests: every wait
// is bounded, every process is stopped by its pid.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { throwOnSanitizerReport } from '../node/support/router.mjs';

export const repoRoot = resolve(import.meta.dirname, '../..');

// A program of the native build: $`envVar`, else build/<preset>/`path` of
// the first preset that built it (HYPERSTREAMS_BROWSER_PRESET first, then
// native-asan, which ./test.sh builds before this stage, then the others).
const PRESETS = [process.env.HYPERSTREAMS_BROWSER_PRESET, 'native-asan', 'native-debug', 'native-release'].filter(Boolean);

export function nativeBinary(path, envVar) {
  if (process.env[envVar]) return process.env[envVar];
  for (const preset of PRESETS) {
    const candidate = join(repoRoot, 'build', preset, path);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${path} not found in build/{${PRESETS.join(',')}}: build a native preset or set ${envVar}`);
}

// Spawns `program` and resolves once a line of its stdout or stderr matches
// `ready`, with the match; rejects if it exits or stays silent too long.
export function startProcess(program, args, { ready, timeoutMs = 15000, name = program }) {
  const child = spawn(program, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = [];
  const proc = {
    name,
    child,
    output,
    exited: new Promise((res) => child.once('exit', (code, signal) => res({ code, signal }))),
    // After 'exit', once its output is all read: a leak report is printed at exit.
    closed: new Promise((res) => child.once('close', res)),
  };
  return new Promise((resolvePromise, reject) => {
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`${name}: not ready after ${timeoutMs} ms\n${output.join('')}`)), timeoutMs);
    const finish = (error, match) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        child.kill('SIGKILL');
        reject(error);
      } else {
        resolvePromise({ ...proc, match });
      }
    };
    const onData = (chunk) => {
      output.push(chunk.toString());
      const match = ready && output.join('').match(ready);
      if (match) finish(null, match);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (error) => finish(error));
    child.once('exit', (code, signal) =>
      finish(new Error(`${name} exited (code ${code}, signal ${signal}) before it was ready\n${output.join('')}`)),
    );
    if (!ready) setImmediate(() => finish(null, null));
  });
}

// SIGTERM, then SIGKILL if the process has not exited within `graceMs`.
// Throws if the process reported a sanitizer finding (the stage runs the ASan build).
export async function stopProcess(proc, graceMs = 5000) {
  if (!proc) return;
  await stopped(proc, graceMs);
  await proc.closed;
  throwOnSanitizerReport(proc.name, proc.output.join(''));
}

async function stopped(proc, graceMs) {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGTERM');
  let timer;
  const gone = await Promise.race([
    proc.exited.then(() => true),
    new Promise((res) => {
      timer = setTimeout(() => res(false), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (!gone) {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
}
