import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, searchForWorkspaceRoot } from 'vite';

// The built page is served by hyperstreams-router (`--web web/dist`), from
// whatever path the router puts it under: hence the relative base.
// `npm run dev` proxies the WebSocket to a router on its default address
// (or HYPERSTREAMS_ROUTER, e.g. 127.0.0.1:8080).
const router = process.env.HYPERSTREAMS_ROUTER ?? '127.0.0.1:7070';

// The package is installed from `file:..`, a link out of this project: the
// dev server may serve its files (the .wasm is fetched, not imported).
const clientPackage = realpathSync(fileURLToPath(new URL('./node_modules/@hyperstreams/client', import.meta.url)));

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // On a busy build machine (CI, 2 cores) Rolldown reports its plugins'
    // wall time as a warning; that says nothing about this project.
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
  server: {
    fs: { allow: [searchForWorkspaceRoot(process.cwd()), clientPackage] },
    proxy: {
      '/ws': { target: `ws://${router}`, ws: true },
    },
  },
});
