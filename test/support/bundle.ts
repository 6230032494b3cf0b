/** The built one-file bundle that tests run, built on demand when missing. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const BUNDLE = `${REPO}dist/pve-baseline.mjs`;

export async function ensureBundle(): Promise<string> {
  if (!existsSync(BUNDLE)) await execa('node', ['scripts/build.mjs'], { cwd: REPO });
  return BUNDLE;
}
