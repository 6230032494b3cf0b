/**
 * `pve-baseline backup [--drill] [--identity FILE]`: what the timer runs, and
 * what an operator runs by hand. It reads the settings the config-backup step
 * wrote, makes the encrypted archive, copies it off the node, reads it back,
 * drills it, and records the result for `check` (src/backup/run.ts). It does
 * not take pve-baseline's lock: it changes no configuration, and a weekly run
 * must not wait for a wizard left open.
 */
import { SETTINGS_FILE, UNIT_NAME, parseSettings } from '../../backup/settings.ts';
import type { StepResult } from '../../engine/events.ts';
import { EXIT } from '../args.ts';
import type { Runtime } from '../runtime.ts';
import { NOT_ROOT, printable, type Output } from './io.ts';

export async function backupCommand(runtime: Runtime, options: { drill: boolean; identity?: string }, io: Output): Promise<number> {
  if (!runtime.node.isRoot) {
    io.err(`pve-baseline: ${NOT_ROOT}`);
    return EXIT.notRoot;
  }
  const text = await runtime.files.read(SETTINGS_FILE).catch(() => null);
  if (text === null) {
    io.err(`pve-baseline backup: not set up here (no ${SETTINGS_FILE}): run the config-backup step first (the wizard, or apply with config-backup answers).`);
    return EXIT.usage;
  }
  let settings;
  try {
    settings = parseSettings(text);
  } catch (error) {
    io.err(`pve-baseline backup: ${printable((error as Error).message)}`);
    return EXIT.usage;
  }
  if (options.identity && (await runtime.files.meta(options.identity)) === null) {
    io.err(`pve-baseline backup: --identity ${printable(options.identity)}: no such file`);
    return EXIT.usage;
  }
  const { runBackup } = await import('../../backup/run.ts');
  const run = await runBackup(settings, { exec: runtime.exec, files: runtime.files, stateDir: runtime.stateDir, node: runtime.node.hostname, log: (line) => io.out(printable(line)) }, { drillOnly: options.drill, ...(options.identity ? { identity: options.identity } : {}) });
  for (const check of run.drill?.checks ?? []) io.out(`  ${check.ok ? 'ok  ' : 'FAIL'} ${printable(check.label)}${check.detail ? `: ${printable(check.detail)}` : ''}`);
  const took = Object.entries(run.ms)
    .map(([part, ms]) => `${part} ${ms} ms`)
    .join(', ');
  if (!run.ok) {
    io.err(`pve-baseline backup: FAILED: ${printable(run.error ?? 'unknown')}`);
    return EXIT.failedOrDrift;
  }
  io.out(`pve-baseline backup: done${run.archive ? `: ${run.archive.name}` : ''}${run.copy ? `, copied to ${run.copy.where}` : ''}, drilled (${took})`);
  return EXIT.ok;
}

/**
 * After an apply that changed the node, a backup of what it now is: the
 * timer's service started without waiting (it runs on its own once this
 * process has let go). Not when nothing changed, nor when the backup step
 * itself ran (its last change is a backup).
 */
export async function backupAfterApply(runtime: Runtime, results: readonly StepResult[]): Promise<void> {
  if (!results.some((r) => r.outcome === 'verified') || results.some((r) => r.stepId === 'config-backup' && r.outcome === 'verified')) return;
  if ((await runtime.files.meta(SETTINGS_FILE).catch(() => null)) === null) return;
  await runtime.exec.run(['systemctl', 'start', '--no-block', `${UNIT_NAME}.service`], { timeoutMs: 30_000 });
}
