// Builds dist/pve-baseline.mjs, the one file that is pve-baseline (see
// scripts/bundle.mjs for what the bundle needs), and checks its size.
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { bundle } from './bundle.mjs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const outfile = 'dist/pve-baseline.mjs';

await bundle({ entry: 'bin/pve-baseline.ts', outfile, version: pkg.version });
chmodSync(outfile, 0o755);
const bytes = statSync(outfile).size;
const limit = 1.5 * 1024 * 1024;
console.log(`${outfile}: ${(bytes / 1024).toFixed(0)} KiB (limit ${(limit / 1024).toFixed(0)} KiB)`);
if (bytes > limit) {
  console.error(`bundle is over the 1.5 MB limit by ${bytes - limit} bytes`);
  process.exit(1);
}
