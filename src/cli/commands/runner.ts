/**
 * The one place a command builds a Runner (apply, dry run, check, the
 * wizard): the node's side effects and backups come from the runtime.
 */
import { Journal } from '../../engine/journal.ts';
import { Runner, type RunnerOptions } from '../../engine/runner.ts';
import type { AnyStep } from '../../engine/step.ts';
import { backupStore, type Runtime } from '../runtime.ts';
import { version } from '../version.ts';

export type RunnerChoices = Omit<RunnerOptions, 'steps' | 'ctx' | 'backups'>;

export function createRunner(runtime: Runtime, steps: readonly AnyStep[], choices: RunnerChoices): Runner {
  return new Runner({
    steps,
    ctx: { exec: runtime.exec, files: runtime.files, node: runtime.node, ...(runtime.api ? { api: runtime.api } : {}), toolVersion: version() },
    backups: backupStore(runtime),
    ...choices,
  });
}

/** What check, status and dry runs read: the journal as it is, never written. */
export function readOnlyJournal(runtime: Runtime): Journal {
  return Journal.snapshot(runtime.stateDir, runtime.node.bootId);
}
