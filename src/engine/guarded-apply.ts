/**
 * The lockout protocol as an explicit state machine: how a change that can
 * cut access is applied so that the operator always keeps a way in.
 *
 *   backed-up  every file the plan touches is copied and recorded
 *   armed      the node's own revert is armed (a timer and a boot hook)
 *   written    the files are on disk          (checked first when they go live on write)
 *   checked    the checks that must hold before the change goes live passed
 *   active     the change is live (a service reloaded, or the file was written)
 *   proven     the state is verified and the live proof passed
 *   kept       a person proved access from a new session; the revert is disarmed
 *   reverted   anything failed, nobody confirmed in time, or the operator stopped
 *
 * Each transition is journaled (StepRecord.guard) before it is announced
 * (a `guard-phase` event), so the wizard, headless output, `status` and the
 * document all read the same phase. A change that goes live when written
 * (a firewall file, a PAM file: `FileChange.activates`) is checked before
 * the write, from the plan's intended content; any other change is checked
 * after the write and before the reload.
 */
import { applyChanges, assertUnchangedSincePlan, type ApplyEnv } from './apply.ts';
import { isActivating, writtenPaths, type Change } from './change.ts';
import type { GuardPhase, Journal } from './journal.ts';
import { OperatorStop, type AccessDecision, type AccessProof, type Operator, type Plan, type PlanGuard, type RunnerEvent, type StepResult } from './events.ts';
import type { AccessGuard, AnyStep, Answers, Check, StepContext } from './step.ts';
import { armRevert, confirmedElsewhere, currentSession, DEFAULT_REVERT_SECONDS, disarmRevert, markActivated, newRevertId, pendingReverts, renderRevertScript, revertNow, revertResult } from './revert/index.ts';
import type { BackupStore } from '../system/files.ts';

/** Which phases may follow which: anything else is a bug in the protocol, not a runtime condition. */
const NEXT: Record<GuardPhase, readonly GuardPhase[]> = {
  'backed-up': ['armed', 'reverted'],
  armed: ['written', 'checked', 'reverted'],
  written: ['checked', 'active', 'reverted'],
  checked: ['written', 'active', 'reverted'],
  active: ['proven', 'reverted'],
  proven: ['kept', 'reverted'],
  kept: [],
  reverted: [],
};

/** A plan that goes live as soon as one of its changes is applied (a firewall file, a PAM file, a pvesh call). */
export function activatesOnWrite(changes: readonly Change[]): boolean {
  return changes.some(isActivating);
}

/** What the plan says of the revert, so the preview, the dry run, `check --json` and the journal show it. */
export function planGuard(guard: AccessGuard<any>, changes: readonly Change[], answers: Answers, facts: unknown): PlanGuard {
  const seconds = typeof guard.seconds === 'function' ? guard.seconds(answers) : guard.seconds;
  return {
    windowSeconds: seconds ?? DEFAULT_REVERT_SECONDS,
    activation: activatesOnWrite(changes) ? 'on-write' : 'on-reload',
    revertRuns: guard.reload.map((argv) => [...argv]),
    cleanup: guard.cleanup?.(facts) ?? [],
    ...(guard.lastResort?.length ? { lastResort: guard.lastResort.map((argv) => [...argv]) } : {}),
  };
}

/** What the runner lends the protocol: its journal, its operator, its way of failing a step. */
export interface GuardedHost {
  journal: Journal;
  backups: BackupStore;
  operator: Operator;
  revert: { stateDir: string; unitDir?: string; forceFallback?: boolean };
  emit(event: RunnerEvent): void;
  requestStop(): void;
  verify(step: AnyStep, ctx: StepContext, answers: Answers): Promise<Check[]>;
  /** Undo what the journal records for the step, record the failure, and say so. */
  fail(step: AnyStep, ctx: StepContext, base: StepBase, reason: string, checks?: Check[]): Promise<StepResult>;
  /** The change is kept (verified): what the host records beyond the journal (a datacenter step's cluster-wide record). */
  kept?(step: AnyStep, ctx: StepContext): Promise<void>;
}

type StepBase = Omit<StepResult, 'outcome'>;

export interface GuardedRun {
  step: AnyStep;
  guard: AccessGuard<any>;
  ctx: StepContext;
  answers: Answers;
  facts: unknown;
  base: StepBase;
}

/** A change of this step armed earlier and still unconfirmed. */
export interface Awaiting {
  revertId: string;
  deadline: number;
  since: Date;
}

export class GuardedApply {
  #phase: GuardPhase | undefined;
  #revertId: string | undefined;
  #live = false;

  constructor(
    private readonly host: GuardedHost,
    private readonly run: GuardedRun,
  ) {}

  get phase(): GuardPhase | undefined {
    return this.#phase;
  }

  /** The whole protocol for a fresh plan. */
  async apply(plan: Plan, applyId: string, env: ApplyEnv): Promise<StepResult> {
    const { journal, backups } = this.host;
    const { step, guard, ctx, answers, facts } = this.run;
    const writes = plan.changes.filter((c) => c.kind !== 'service');
    const services = plan.changes.filter((c) => c.kind === 'service');
    const paths = [...new Set(writes.flatMap(writtenPaths))];
    const onWrite = activatesOnWrite(plan.changes);
    const window = plan.guard?.windowSeconds ?? planGuard(guard, plan.changes, answers, facts).windowSeconds;
    try {
      await assertUnchangedSincePlan(ctx.files, writes);
      // Every file backed up and recorded first (a command's declared writes too): the revert is written from these records.
      for (const path of paths) {
        if (journal.step(step.id)?.applied.some((a) => a.kind === 'file' && a.path === path)) continue;
        journal.recordApplied(step.id, { kind: 'file', path, backup: await backups.backup(applyId, path) });
      }
      this.#to('backed-up', { detail: `${paths.length} file${paths.length === 1 ? '' : 's'}` });

      // Armed before anything changes: from here on, a kill, a hang-up or a reboot reverts.
      const records = (journal.step(step.id)?.applied ?? []).flatMap((a) => (a.kind === 'file' ? [a.backup] : []));
      const revertId = newRevertId(applyId);
      const script = renderRevertScript({
        id: revertId,
        backups: records,
        reload: guard.reload,
        cleanup: guard.cleanup?.(facts) ?? [],
        lastResort: guard.lastResort ?? [],
        stateDir: this.host.revert.stateDir,
        ...(this.host.revert.unitDir ? { unitDir: this.host.revert.unitDir } : {}),
      });
      const handle = await armRevert(ctx.exec, ctx.files, { id: revertId, script, seconds: window, session: await currentSession(ctx.files), ...this.host.revert });
      this.#revertId = revertId;
      this.#to('armed', { revertId, deadline: handle.deadline, detail: `until ${new Date(handle.deadline).toISOString()} (${handle.armedWith})` });
      ctx.log(`the node reverts this change at ${new Date(handle.deadline).toISOString()} unless access is confirmed`);

      if (onWrite) {
        // Applying is activating: what comes before the first live change is staged (not live yet, e.g. ipset
        // entries while the firewall is off), then what must hold is checked, on the intended content and on
        // the staged files, before the change that makes it live.
        const first = writes.findIndex(isActivating);
        const staged = writes.slice(0, first);
        if (staged.length) {
          await applyChanges(step.id, applyId, staged, env);
          this.#to('written', { detail: `${staged.length} staged change${staged.length === 1 ? '' : 's'}, not live yet` });
        }
        const pre = await this.#beforeActivate(plan.changes);
        if (!pre.every((c) => c.ok)) return await this.#revert(`refused before activating: ${failed(pre)}`, pre);
        this.#to('checked');
        this.#live = true;
        await markActivated(ctx.files, revertId, { stateDir: this.host.revert.stateDir });
        await applyChanges(step.id, applyId, writes.slice(first), env);
        if (!staged.length) this.#to('written');
        await applyChanges(step.id, applyId, services, env);
      } else {
        await applyChanges(step.id, applyId, writes, env);
        this.#to('written');
        const pre = await this.#beforeActivate(plan.changes);
        if (!pre.every((c) => c.ok)) return await this.#revert(`refused before activating: ${failed(pre)}`, pre);
        this.#to('checked');
        this.#live = true;
        await markActivated(ctx.files, revertId, { stateDir: this.host.revert.stateDir });
        await applyChanges(step.id, applyId, services, env);
      }
      const activatedAt = new Date();
      journal.setStatus(step.id, 'applied');
      this.#to('active');

      let checks = await this.host.verify(step, ctx, answers);
      if (checks.every((c) => c.ok) && guard.prove) checks = [...checks, ...(await this.#prove())];
      if (!checks.every((c) => c.ok)) return await this.#revert(`verification failed: ${failed(checks)}`, checks);
      this.#to('proven');

      // Kept only when access is confirmed.
      const until = new Date(handle.deadline).toISOString();
      if (!this.host.operator.confirmAccess) {
        journal.setStatus(step.id, 'applied', { note: `awaiting confirmation until ${until}: run pve-baseline confirm from a new session` });
        return { ...this.run.base, outcome: 'awaiting-confirmation', checks, reason: `confirm from a new session before ${until} (pve-baseline confirm), or the node reverts` };
      }
      return await this.#keepIfConfirmed({ revertId, deadline: handle.deadline, since: activatedAt }, checks);
    } catch (error) {
      return this.#revert(`apply failed: ${(error as Error).message}`);
    }
  }

  /**
   * Started again while an earlier apply awaits confirmation (e.g. the
   * session dropped during the countdown): the countdown goes on, and a
   * login the operator made since the change went live counts.
   */
  async resume(awaiting: Awaiting): Promise<StepResult> {
    const { ctx } = this.run;
    this.#revertId = awaiting.revertId;
    this.#phase = this.host.journal.step(this.run.step.id)?.guard?.phase ?? 'proven';
    this.#live = true;
    const until = new Date(awaiting.deadline).toISOString();
    if (!this.host.operator.confirmAccess) {
      return { ...this.run.base, outcome: 'awaiting-confirmation', reason: `applied earlier; confirm from a new session before ${until} (pve-baseline confirm), or the node reverts` };
    }
    ctx.log(`applied earlier and not yet confirmed: the node reverts it at ${until} unless access is proven`);
    return this.#keepIfConfirmed(awaiting, []);
  }

  /** Keep the change only when the operator proves access before the deadline (or, on the console, chooses to). */
  async #keepIfConfirmed(armed: Awaiting, checks: Check[]): Promise<StepResult> {
    const { journal } = this.host;
    const { step, ctx, base } = this.run;
    const decision = await this.#awaitAccess(armed);
    if (decision.kind === 'revert') return this.#revert(decision.reason, checks);
    const disarm = await disarmRevert(ctx.exec, ctx.files, armed.revertId, this.host.revert);
    if (!disarm.disarmed) return this.#revertedMeanwhile(disarm.reverted ?? 'the revert is running', checks);
    const proof: AccessProof = decision.kind === 'proven' ? decision.proof : { by: 'console', detail: "on the console, by the operator's choice" };
    const label = proof.by === 'login' ? 'a new login proved access' : proof.by === 'confirm' ? 'access confirmed from a new session' : 'kept without a second login';
    journal.setProof(step.id, {
      by: proof.by,
      at: new Date().toISOString(),
      ...(proof.user ? { user: proof.user } : {}),
      ...(proof.from ? { from: proof.from } : {}),
      ...(proof.fingerprint ? { fingerprint: proof.fingerprint } : {}),
    });
    this.#to('kept', { detail: proof.detail });
    journal.setStatus(step.id, 'verified', { note: `${label}: ${proof.detail}` });
    await this.host.kept?.(step, ctx);
    return { ...base, outcome: 'verified', checks: [...checks, { label, ok: true, detail: proof.detail }] };
  }

  /**
   * The confirmation came too late: the node's revert had claimed the change.
   * Only a revert that finished lets the record of what was applied go; a
   * failed or running one keeps it, so `pve-baseline revert STEP` can still undo.
   */
  #revertedMeanwhile(result: string, checks: Check[]): StepResult {
    const { journal } = this.host;
    const { step, base } = this.run;
    if (result.startsWith('reverted')) {
      journal.clearApplied(step.id);
      this.#to('reverted', { detail: result });
      journal.setStatus(step.id, 'failed', { error: `the node reverted the change before it was confirmed: ${result}` });
      return { ...base, outcome: 'failed', reason: 'the node reverted the change before it was confirmed', rolledBack: true, checks };
    }
    const error = `the node's revert claimed the change before it was confirmed, and has not finished: ${result}; run pve-baseline revert ${step.id}`;
    journal.setStatus(step.id, 'failed', { error });
    return { ...base, outcome: 'failed', reason: error, rolledBack: false, checks };
  }

  /** Revert now: the node's script puts the files back (reloading only what went live), then the record is undone. */
  async #revert(reason: string, checks?: Check[]): Promise<StepResult> {
    const { step, ctx, base } = this.run;
    if (this.#revertId) {
      const now = await revertNow(ctx.exec, this.#revertId, { stateDir: this.host.revert.stateDir, reload: this.#live, files: ctx.files });
      ctx.log(now.result);
    }
    const result = await this.host.fail(step, ctx, base, reason, checks);
    if (this.#phase && this.#phase !== 'reverted') this.#to('reverted', { detail: reason });
    return result;
  }

  async #beforeActivate(changes: readonly Change[]): Promise<Check[]> {
    const { guard, ctx, answers, facts } = this.run;
    if (!guard.beforeActivate) return [];
    try {
      return await guard.beforeActivate(ctx, answers, facts, changes);
    } catch (error) {
      return [{ label: 'the checks before activating ran', ok: false, detail: (error as Error).message }];
    }
  }

  async #prove(): Promise<Check[]> {
    const { guard, ctx, answers, facts } = this.run;
    try {
      return await guard.prove!(ctx, answers, facts);
    } catch (error) {
      return [{ label: 'the live proof ran', ok: false, detail: (error as Error).message }];
    }
  }

  /**
   * The countdown: the operator proves access by logging in from a new
   * session (the step's watch), or by running `pve-baseline confirm` there;
   * whichever comes first. At the deadline the node reverts on its own.
   */
  async #awaitAccess(armed: Awaiting): Promise<AccessDecision> {
    const { step, guard, ctx, answers, facts } = this.run;
    const stop = new AbortController();
    const access = guard.access?.(ctx, answers, facts);
    const never = new Promise<never>(() => undefined);
    // A source that ends without a proof (aborted, or its watch failed) does not end the wait: only the deadline does.
    // `pve-baseline confirm` in another session counts, unless only the step's own proof does (guard.provenOnlyBy).
    const proofs: Promise<AccessProof>[] = guard.provenOnlyBy
      ? []
      : [
          confirmedElsewhere(ctx.files, armed.revertId, { stateDir: this.host.revert.stateDir, signal: stop.signal }).then((at) =>
            at ? { by: 'confirm' as const, detail: `pve-baseline confirm ran in another session (${at})` } : never,
          ),
        ];
    if (access) {
      proofs.push(
        access.watch(armed.since, stop.signal).then(
          (seen) => (seen ? { by: 'login' as const, ...seen } : never),
          (error: Error) => (ctx.log(`watching for the login failed: ${error.message}`), never),
        ),
      );
    }
    const deadlineReached = new Promise<null>((resolve) => {
      const timer = setTimeout(() => resolve(null), Math.max(0, armed.deadline - Date.now()));
      stop.signal.addEventListener('abort', () => (clearTimeout(timer), resolve(null)), { once: true });
    });
    try {
      return await this.host.operator.confirmAccess!({
        stepId: step.id,
        title: step.title,
        deadline: armed.deadline,
        instructions: [...(access?.instructions ?? []), ...(guard.provenOnlyBy ? [] : ['or, from a new session: pve-baseline confirm'])],
        maySkip: ctx.node.session.kind === 'console',
        proof: Promise.race([...proofs, deadlineReached]),
      });
    } catch (error) {
      // Ctrl+C while the node counts down: the change is not confirmed, so it goes back now.
      if (error instanceof OperatorStop) {
        this.host.requestStop();
        return { kind: 'revert', reason: 'stopped by the operator before access was confirmed' };
      }
      throw error;
    } finally {
      stop.abort();
    }
  }

  #to(phase: GuardPhase, extra: { revertId?: string; deadline?: number; detail?: string } = {}): void {
    if (this.#phase && !NEXT[this.#phase].includes(phase)) throw new Error(`lockout protocol: ${this.#phase} cannot be followed by ${phase}`);
    this.#phase = phase;
    this.host.journal.setGuard(this.run.step.id, phase, extra);
    this.host.emit({ type: 'guard-phase', stepId: this.run.step.id, phase, ...(extra.deadline ? { deadline: extra.deadline } : {}), ...(extra.detail ? { detail: extra.detail } : {}) });
  }
}

/**
 * The journal says applied, but while nobody watched the node put the change
 * back (its timer, or the boot hook): record that, so the journal stays
 * truthful and the step is planned anew.
 */
export async function noteRevertByTheNode(step: AnyStep, ctx: StepContext, journal: Journal): Promise<void> {
  const record = journal.step(step.id);
  const revertId = record?.guard?.revertId;
  if (!step.guard || record?.status !== 'applied' || !revertId) return;
  const result = await revertResult(ctx.files, revertId, { stateDir: journal.dir });
  if (!result?.startsWith('reverted')) return;
  journal.clearApplied(step.id);
  journal.setGuard(step.id, 'reverted', { detail: result });
  journal.setStatus(step.id, 'reverted', { note: `the node reverted it, unconfirmed: ${result}` });
}

/** A change of this step applied earlier and still waiting for confirmation (the revert is armed), if any. */
export async function awaitingConfirmation(step: AnyStep, ctx: StepContext, journal: Journal): Promise<Awaiting | undefined> {
  const record = journal.step(step.id);
  const revertId = record?.guard?.revertId;
  if (!step.guard || record?.status !== 'applied' || !revertId) return undefined;
  const pending = (await pendingReverts(ctx.files, { stateDir: journal.dir })).find((p) => p.id === revertId && p.state === 'pending');
  if (!pending) return undefined;
  const activeAt = record.guard?.phases.find((p) => p.phase === 'active')?.at;
  return { revertId, deadline: pending.deadline, since: activeAt ? new Date(activeAt) : new Date(pending.deadline - 24 * 3600_000) };
}

function failed(checks: readonly Check[]): string {
  return checks
    .filter((c) => !c.ok)
    .map((c) => (c.detail ? `${c.label} (${c.detail})` : c.label))
    .join('; ');
}
