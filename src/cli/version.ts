import { readFileSync } from 'node:fs';

declare const __PVE_BASELINE_VERSION__: string | undefined;

/** The version: stamped into the bundle at build time, read from package.json when run from source. */
export function version(): string {
  if (typeof __PVE_BASELINE_VERSION__ === 'string') return __PVE_BASELINE_VERSION__;
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
