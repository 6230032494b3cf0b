/**
 * Shared by the lab test files: get the (shared, already booted) lab, or skip
 * with a clear reason where the lab cannot run. In CI (CI=true) an
 * unsupported machine is a failure, not a skip.
 */
import { test } from 'node:test';
import { ensureLab, labSupport, type Lab } from './lab.ts';

export async function labOrSkip(): Promise<Lab | undefined> {
  const support = await labSupport();
  if (!support.ok) {
    if (process.env.CI === 'true') throw new Error(`the lab cannot run in CI: ${support.reason}`);
    test(`lab tests skipped: ${support.reason}`, { skip: support.reason }, () => {});
    return undefined;
  }
  return ensureLab({ log: (l) => process.stderr.write(`lab: ${l}\n`) });
}

/** exec in the node and fail with the command's output when it does not exit 0 */
export async function sh(lab: Lab, script: string): Promise<string> {
  const r = await lab.exec(['sh', '-c', script]);
  if (r.exitCode !== 0) throw new Error(`'${script}' exited ${r.exitCode}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** The built bundle as /usr/local/bin/pve-baseline in the node, as an operator installs it. */
export async function installBundle(lab: Lab): Promise<void> {
  const { chmodSync, copyFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { ensureBundle } = await import('../support/bundle.ts');
  const target = join(lab.rootDir, 'usr/local/bin/pve-baseline');
  copyFileSync(await ensureBundle(), target);
  chmodSync(target, 0o755);
}
