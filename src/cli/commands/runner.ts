/**
 * The one place a command builds a Runner (apply, dry run, check, the
 * wizard): the node's side effects and backups come from the runtime.
 */
import { Journal } from '../../engine/journal.ts';
import { Runner, type RunnerOptions } from '../../engine/runner.ts';
import type { AnyStep } from '../../engine/step.ts';
import { backupStore, type Runtime } from '../runtime.ts';
import { version } from '../version.ts';
import { installPostboot } from '../../engine/reboot.ts';
import { realpathSync } from 'node:fs';

export type RunnerChoices = Omit<RunnerOptions, 'steps' | 'ctx' | 'backups'>;

export function createRunner(runtime: Runtime, steps: readonly AnyStep[], choices: RunnerChoices): Runner {
  return new Runner({
    steps,
    ctx: { exec: runtime.exec, files: runtime.files, node: runtime.node, ...(runtime.api ? { api: runtime.api } : {}), toolVersion: version(), ...programPath() },
    backups: backupStore(runtime),
    reboot: nodeReboot(runtime),
    ...choices,
  });
}

/**
 * The node's reboot for a step that needs one: the check after the boot runs
 * this same program (`pve-baseline postboot`), then systemd reboots.
 */
export function nodeReboot(runtime: Runtime): NonNullable<RunnerOptions['reboot']> {
  return {
    prepare: () => installPostboot(runtime.files, runtime.exec, selfPath()),
    now: async () => {
      const r = await runtime.exec.run(['systemctl', 'reboot']);
      if (r.exitCode !== 0) throw new Error(`systemctl reboot exited with ${r.exitCode}: ${r.stderr.trim()}`);
    },
  };
}

/** This program as installed (/usr/local/bin/pve-baseline, a link resolved), for the unit that runs it after the boot. */
function selfPath(): string {
  const script = process.argv[1];
  if (!script) throw new Error('cannot tell where pve-baseline is installed');
  return realpathSync(script);
}

/** selfPath() for the step context, when it can be told. */
function programPath(): { program?: string } {
  try {
    return { program: selfPath() };
  } catch {
    return {};
  }
}

/** What check, status and dry runs read: the journal as it is, never written. */
export function readOnlyJournal(runtime: Runtime): Journal {
  return Journal.snapshot(runtime.stateDir, runtime.node.bootId);
}
