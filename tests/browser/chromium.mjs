// Debian's Chromium for the browser tests: headless, with nothing of its own
// on the network (no QUIC, background fetches, component updates or sync),
// in a profile directory of its own that close() removes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// Resolves to { context, close }: Playwright's persistent context, given
// `options` (a viewport, ...), and what closes it and removes its profile.
export async function launchChromium(options = {}) {
  const userDataDir = await mkdtemp(join(tmpdir(), 'hyperstreams-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: '/usr/bin/chromium',
      args: ARGS,
      ...options,
    });
    return {
      context,
      close: async () => {
        await context.close();
        await rm(userDataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
}
