/**
 * `pve-baseline confirm`, run from a NEW login: that a person could log in
 * anew is the proof. It refuses the session that applied the change (the
 * same login, a window or a sudo of it, the same SSH connection), a session
 * with no SSH connection and no terminal (cron), and any change not yet
 * live, and a change only its own proof keeps (AccessGuard.provenOnlyBy: a
 * second factor, kept by its owner's web login with a code). It disarms
 * each pending revert (race-safe against the timer) and, unless a wizard
 * is still running and records it itself, marks the step
 * verified. When the node's revert claimed the change first, it says what the
 * revert did and leaves the journal alone: a revert that FAILED or still runs
 * must keep the record `pve-baseline revert STEP` undoes from.
 */
import type { StepRecord } from '../../engine/journal.ts';
import type { AnyStep } from '../../engine/step.ts';
import { settleDatacenterApply } from '../../engine/datacenter.ts';
import type { RevertSession } from '../../engine/revert/index.ts';
import { EXIT } from '../args.ts';
import { openJournal, type Runtime } from '../runtime.ts';
import { readOnlyJournal } from './runner.ts';
import { NOT_ROOT, type Output } from './io.ts';
import { tryLock } from './lock.ts';

export async function confirmCommand(runtime: Runtime, io: Output, options: { unitDir?: string; session?: RevertSession; steps?: readonly AnyStep[] } = {}): Promise<number> {
  if (!runtime.node.isRoot) {
    io.err(`pve-baseline: ${NOT_ROOT}`);
    return EXIT.notRoot;
  }
  const { confirmFromSession, currentSession, pendingReverts, revertIdOf } = await import('../../engine/revert/index.ts');
  const pending = await pendingReverts(runtime.files, { stateDir: runtime.stateDir });
  if (pending.indexError) io.err(`pve-baseline: ${pending.indexError.message}`);
  if (!pending.length) {
    // With a damaged index "nothing" is not known for sure: no pending marker was found, and that is all that can be said.
    if (pending.indexError) {
      io.err('pve-baseline: no pending marker was found; nothing was confirmed.');
      return EXIT.usage;
    }
    io.out('Nothing is waiting for confirmation.');
    return EXIT.ok;
  }
  const session = options.session ?? (await currentSession(runtime.files));
  // A running wizard holds the lock and records the confirmation itself; without the lock the journal is not ours to write.
  const held = tryLock(runtime, 'confirm');
  const journal = held.ok ? openJournal(runtime) : null;
  const armedFor = (record: StepRecord) => record.guard?.revertId ?? (record.applyId !== undefined ? revertIdOf(record.applyId) : undefined);
  // Which step each pending revert belongs to; without the lock (a wizard runs) the journal is only read.
  const records = ((): Record<string, StepRecord> => {
    try {
      return (journal ?? readOnlyJournal(runtime)).all();
    } catch {
      return {}; // a damaged journal: the markers alone are confirmed, as before
    }
  })();
  let lost = 0;
  let refused = 0;
  try {
    for (const p of pending) {
      const stepId = Object.entries(records).find(([, rec]) => armedFor(rec) === p.id)?.[0];
      const name = stepId ?? p.id;
      if (p.state === 'interrupted') {
        lost++;
        io.err(`pve-baseline: too late for ${name}: the node's revert claimed it and has not finished${p.result ? ` (${p.result.split('\n')[0]})` : ''}; the boot hook tries again, or run sh ${p.script} now. The journal keeps what was applied: pve-baseline revert ${stepId ?? 'STEP'} can undo it.`);
        continue;
      }
      // A new login proves nothing about some access (a second factor for the web UI): that change waits for its own proof.
      const provenOnlyBy = stepId ? options.steps?.find((s) => s.id === stepId)?.guard?.provenOnlyBy : undefined;
      if (provenOnlyBy) {
        refused++;
        io.err(`pve-baseline: not confirmed: ${name}: a new session does not prove it; it is kept only after ${provenOnlyBy}. Nothing was changed; the node reverts it ${p.deadline > 0 ? `at ${new Date(p.deadline).toISOString()}` : 'at its deadline'} unless that happens.`);
        continue;
      }
      const r = await confirmFromSession(runtime.exec, runtime.files, p.id, session, { stateDir: runtime.stateDir, ...(options.unitDir ? { unitDir: options.unitDir } : {}) });
      if (r.kind === 'refused') {
        refused++;
        io.err(`pve-baseline: not confirmed: ${name}: ${r.reason}. Nothing was changed; the node reverts it ${p.deadline > 0 ? `at ${new Date(p.deadline).toISOString()}` : 'at its deadline'} unless a new login confirms it.`);
        continue;
      }
      if (r.kind === 'lost') {
        lost++;
        // Only a revert that finished put the files back; the journal is left as it is either way (the next run records what the node did).
        if (r.result.startsWith('reverted')) io.err(`pve-baseline: too late for ${name}: the node already reverted it (${r.result.split('\n')[0]}); the change is gone.`);
        else if (r.result.startsWith('FAILED')) {
          io.err(`pve-baseline: too late for ${name}: the node's revert claimed it and FAILED, so the change may be partly undone:`);
          for (const line of r.result.split('\n')) io.err(`  ${line}`);
          io.err(`  The journal keeps what was applied: run pve-baseline revert ${stepId ?? 'STEP'} to finish the undo.`);
        } else io.err(`pve-baseline: too late for ${name}: the node's revert claimed it and is still running; run pve-baseline status in a minute to see how it ended.`);
        continue;
      }
      if (journal && stepId) {
        journal.setStatus(stepId, 'verified', { note: 'access confirmed from a new session (pve-baseline confirm)' });
        // Kept now: a datacenter step's shared changes are recorded cluster-wide, as the wizard does when it keeps one.
        for (const note of await settleDatacenterApply(runtime.files, runtime.stateDir, runtime.node, stepId, journal.step(stepId)?.applyId).catch((error: Error) => [`the datacenter record was not written: ${error.message}`])) io.err(`pve-baseline: ${note}`);
      }
      io.out(`Confirmed ${name}: the change stays; the revert set for ${p.deadline > 0 ? new Date(p.deadline).toISOString() : 'its deadline'} is disarmed.`);
    }
  } finally {
    if (held.ok) held.release();
  }
  if (!held.ok) io.out('A wizard is running: it records the confirmation itself.');
  if (refused) return EXIT.usage;
  return lost ? EXIT.failedOrDrift : EXIT.ok;
}
