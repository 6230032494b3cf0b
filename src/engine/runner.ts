/**
 * The runner drives steps in order: probe, ask, plan, review, apply, verify,
 * and rolls a step back when it fails. It is a plain async loop: the front-end
 * (wizard or headless) supplies an Operator and listens to events; nothing
 * here knows about terminals.
 */
import { randomBytes } from 'node:crypto';
import { applyChanges, rollbackApplied, type ApplyEnv } from './apply.ts';
import { armRevert, confirmedElsewhere, DEFAULT_REVERT_SECONDS, disarmRevert, pendingReverts, renderRevertScript, revertIdOf, revertNow, revertResult } from './revert-guard.ts';
import type { Journal, StepStatus } from './journal.ts';
import { orderSteps } from './order.ts';
import { applicableQuestions, detectedDefault, validateAnswer } from './questions.ts';
import { persistableAnswers, type AccessGuard, type AnyStep, type Answers, type Check, type QuestionContext, type StepContext } from './step.ts';
import { OperatorStop, type AccessDecision, type AccessProof, type Operator, type Plan, type RunnerEvent, type StepInfo, type StepOutcome, type StepResult } from './events.ts';
import type { BackupStore } from '../system/files.ts';

export interface RunnerOptions {
  steps: readonly AnyStep[];
  journal: Journal;
  ctx: Omit<StepContext, 'log' | 'answersOf' | 'journalRecords'>;
  backups: BackupStore;
  operator: Operator;
  onEvent?: (event: RunnerEvent) => void;
  /** Run only these step ids (their dependencies must already be verified). */
  only?: readonly string[];
  /** Probe and plan, show, change nothing. */
  dryRun?: boolean;
  /** Answers given up front (answers file); validated before they are used. */
  presetAnswers?: Record<string, Answers>;
  /** Where and how lockout-risk reverts are armed (tests: a unit dir, the setsid fallback). */
  revert?: { unitDir?: string; forceFallback?: boolean };
}

/**
 * Undo everything the journal records for a step (newest first), then the
 * step's own afterRollback. Clears the record when all of it worked; returns
 * the problems met otherwise, keeping the record for another try.
 */
export async function revertStep(step: AnyStep, env: { journal: Journal; backups: BackupStore; ctx: StepContext }): Promise<string[]> {
  const applied = env.journal.step(step.id)?.applied ?? [];
  const problems = await rollbackApplied(applied, { exec: env.ctx.exec, backups: env.backups, onLine: env.ctx.log });
  if (!problems.length && step.afterRollback) {
    try {
      await step.afterRollback(env.ctx);
    } catch (error) {
      problems.push(`${step.id}: ${(error as Error).message}`);
    }
  }
  if (!problems.length) env.journal.clearApplied(step.id);
  return problems;
}

/** The operator could not be asked (headless, no answer in the file). */
export class MissingAnswerError extends Error {
  constructor(readonly field: string) {
    super(`no answer for ${field}`);
    this.name = 'MissingAnswerError';
  }
}

/** An answer given up front was refused; names the field. */
export class AnswerError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'AnswerError';
  }
}

export class Runner {
  readonly #opts: RunnerOptions;
  readonly #steps: AnyStep[];
  #stopRequested = false;
  #current: string | undefined;
  /** Answers given in this run (secrets excluded), for later steps' answersOf. */
  readonly #answered = new Map<string, Answers>();

  constructor(options: RunnerOptions) {
    this.#opts = options;
    const ordered = orderSteps(options.steps);
    const only = options.only;
    if (only) {
      const unknown = only.filter((id) => !ordered.some((s) => s.id === id));
      if (unknown.length) throw new Error(`unknown step: ${unknown.join(', ')} (known: ${ordered.map((s) => s.id).join(', ')})`);
    }
    this.#steps = only ? ordered.filter((s) => only.includes(s.id)) : ordered;
  }

  /** The step being worked on, if any (for a hangup handler's journal note). */
  get currentStep(): string | undefined {
    return this.#current;
  }

  get stopRequested(): boolean {
    return this.#stopRequested;
  }

  /** Stop at the next step boundary; the step in progress finishes (or rolls back) first. */
  requestStop(): void {
    if (this.#stopRequested) return;
    this.#stopRequested = true;
    this.#emit({ type: 'stop-requested' });
  }

  /** The steps this run covers, with what the journal says of them. */
  stepInfos(): StepInfo[] {
    return this.#steps.map((s) => ({
      id: s.id,
      title: s.title,
      summary: s.summary,
      risk: s.risk,
      scope: s.scope,
      journaled: this.#opts.journal.status(s.id),
    }));
  }

  /** Where a resumed run picks up: the first step the journal does not hold as verified. */
  resumePoint(): { stepId: string; index: number } | undefined {
    if (this.#opts.journal.isEmpty) return undefined;
    const index = this.#steps.findIndex((s) => this.#opts.journal.status(s.id) !== 'verified');
    return index < 0 ? undefined : { stepId: this.#steps[index]!.id, index };
  }

  async run(): Promise<StepResult[]> {
    const resumeAt = this.resumePoint();
    this.#emit({ type: 'run-started', steps: this.stepInfos(), ...(resumeAt ? { resumeAt } : {}) });
    const results: StepResult[] = [];
    const passed = new Set<string>();
    for (const [index, step] of this.#steps.entries()) {
      if (this.#stopRequested) break;
      this.#current = step.id;
      const previously = this.#opts.journal.status(step.id);
      this.#emit({ type: 'step-started', stepId: step.id, index, ...(previously !== 'pending' ? { previously } : {}) });
      const result = await this.#runStep(step, passed);
      // A dependency that does not apply to this node (e.g. cluster-only) does not hold others back.
      if (result.outcome === 'compliant' || result.outcome === 'verified' || result.outcome === 'not-applicable') passed.add(step.id);
      results.push(result);
      this.#emit({
        type: 'step-finished',
        stepId: step.id,
        outcome: result.outcome,
        ...(result.checks ? { checks: result.checks } : {}),
        ...(result.reason ? { reason: result.reason } : {}),
        ...(result.rolledBack !== undefined ? { rolledBack: result.rolledBack } : {}),
      });
    }
    this.#current = undefined;
    this.#emit({ type: 'run-finished', results, stopped: this.#stopRequested });
    return results;
  }

  async #runStep(step: AnyStep, passed: Set<string>): Promise<StepResult> {
    const { journal } = this.#opts;
    const base = { stepId: step.id, title: step.title, changes: 0 };
    const missing = (step.dependsOn ?? []).filter((d) => !passed.has(d) && journal.status(d) !== 'verified');
    if (missing.length) {
      const titles = missing.map((d) => this.#opts.steps.find((s) => s.id === d)?.title ?? d);
      return { ...base, outcome: 'skipped', reason: `needs ${titles.join(', ')} first` };
    }
    const ctx: StepContext = {
      ...this.#opts.ctx,
      log: (line) => this.#emit({ type: 'output', stepId: step.id, line }),
      answersOf: (id) => this.#answered.get(id) ?? journal.step(id)?.answers ?? {},
      journalRecords: () => journal.all(),
    };

    const unmet = step.requires?.(ctx.node);
    if (unmet) return { ...base, outcome: 'not-applicable', reason: unmet };
    let plan: Plan;
    let answers: Answers;
    let facts: unknown;
    try {
      facts = await step.probe(ctx);
      const na = step.notApplicable?.(facts, ctx.node);
      if (na) return { ...base, outcome: 'not-applicable', reason: na };
      answers = await this.#collectAnswers(step, facts, ctx);
      await this.#noteRevertByTheNode(step, ctx);
      const awaiting = await this.#awaitingRevert(step, ctx);
      if (awaiting) return await this.#resumeAwaiting(step, ctx, answers, facts, awaiting, base);
      plan = { stepId: step.id, title: step.title, risk: step.risk, changes: step.plan(facts, answers, ctx.node) };
      // A plan that would shut the operator out is refused before it is shown; the journal is left as it was.
      const refusals = plan.changes.length && step.preflight ? step.preflight(facts, answers, ctx.node) : [];
      if (!refusals.every((c) => c.ok)) return { ...base, outcome: 'failed', checks: refusals, reason: `refused before any change: ${failedChecks(refusals)}` };
    } catch (error) {
      if (error instanceof MissingAnswerError) return { ...base, outcome: 'skipped', reason: `needs an answer for ${error.field}` };
      if (error instanceof AnswerError || error instanceof OperatorStop) throw error;
      return { ...base, outcome: 'failed', reason: `could not probe or plan: ${(error as Error).message}` };
    }

    if (plan.changes.length === 0) {
      const checks = await this.#verify(step, ctx, answers);
      if (!checks.every((c) => c.ok)) return { ...base, outcome: 'failed', checks, reason: failedChecks(checks) };
      if (!this.#opts.dryRun && journal.status(step.id) !== 'verified') journal.setStatus(step.id, 'verified', { note: 'compliant' });
      return { ...base, outcome: 'compliant', checks };
    }

    this.#emit({ type: 'step-planned', plan });
    const count = { ...base, changes: plan.changes.length };
    if (this.#opts.dryRun) return { ...count, outcome: 'planned' };

    const decision = await this.#opts.operator.review(plan);
    if (decision === 'stop') {
      this.requestStop();
      return { ...count, outcome: 'skipped', reason: 'stopped before applying' };
    }
    if (decision === 'skip') return { ...count, outcome: 'skipped', reason: 'skipped by the operator' };
    if (typeof decision === 'object') return { ...count, outcome: 'skipped', reason: decision.skip };

    return this.#apply(step, ctx, plan, answers, facts, count);
  }

  async #apply(step: AnyStep, ctx: StepContext, plan: Plan, answers: Answers, facts: unknown, base: Omit<StepResult, 'outcome'>): Promise<StepResult> {
    const { journal, backups } = this.#opts;
    let record = journal.step(step.id);
    // A failed apply whose rollback was incomplete still owns changes: undo them first,
    // so their original backups are not lost under a new apply.
    if (record?.status === 'failed' && record.applied.length) {
      const problems = await revertStep(step, { journal, backups, ctx });
      if (problems.length) {
        return { ...base, outcome: 'failed', reason: `an earlier rollback is still incomplete: ${problems.join('; ')}`, rolledBack: false };
      }
      record = journal.step(step.id);
    }
    // An interrupted apply continues under its own id, keeping its original backups.
    const resumedId = record && (record.status === 'applying' || record.status === 'applied') ? record.applyId : undefined;
    const resuming = resumedId !== undefined;
    const applyId = resumedId ?? `${new Date().toISOString().replace(/[:.]/g, '-')}-${step.id}-${randomBytes(2).toString('hex')}`;
    journal.setStatus(step.id, 'applying', { applyId, ...(resuming ? { note: 'resumed after an interruption' } : {}) });
    this.#emit({ type: 'step-applying', stepId: step.id });
    const env = {
      exec: ctx.exec,
      files: ctx.files,
      backups,
      journal,
      onLine: ctx.log,
      onChange: (index: number, change: Plan['changes'][number], phase: 'started' | 'finished') =>
        this.#emit(phase === 'started' ? { type: 'change-started', stepId: step.id, index, change } : { type: 'change-finished', stepId: step.id, index }),
    };
    if (step.guard) return this.#applyGuarded(step, step.guard, ctx, plan, answers, facts, base, applyId, env);
    try {
      await applyChanges(step.id, applyId, plan.changes, env);
    } catch (error) {
      return this.#fail(step, ctx, base, `apply failed: ${(error as Error).message}`);
    }
    journal.setStatus(step.id, 'applied');
    const checks = await this.#verify(step, ctx, answers);
    if (!checks.every((c) => c.ok)) return this.#fail(step, ctx, base, `verification failed: ${failedChecks(checks)}`, checks);
    journal.setStatus(step.id, 'verified');
    return { ...base, outcome: 'verified', checks };
  }

  /**
   * The lockout protocol (design.md): back up every file, arm the revert the
   * node owns, write, check before activating, activate, verify, and keep the
   * change only once access is confirmed. Any failure reverts at once.
   */
  async #applyGuarded(
    step: AnyStep,
    guard: AccessGuard<any>,
    ctx: StepContext,
    plan: Plan,
    answers: Answers,
    facts: unknown,
    base: Omit<StepResult, 'outcome'>,
    applyId: string,
    env: ApplyEnv,
  ): Promise<StepResult> {
    const { journal, backups } = this.#opts;
    const revertOpts = { stateDir: journal.dir, ...this.#opts.revert };
    const revertId = revertIdOf(applyId);
    const fileChanges = plan.changes.filter((c) => c.kind === 'file');
    const serviceChanges = plan.changes.filter((c) => c.kind === 'service');
    const otherChanges = plan.changes.filter((c) => c.kind === 'command');
    let armed = false;
    let activated = false;
    const failNow = async (reason: string, checks?: Check[]): Promise<StepResult> => {
      if (armed) {
        const now = await revertNow(ctx.exec, revertId, { ...revertOpts, reload: activated });
        ctx.log(now.result);
      }
      return this.#fail(step, ctx, base, reason, checks);
    };
    try {
      // 1. Every file backed up and recorded first: the revert script is written from these records.
      for (const change of fileChanges) {
        if (journal.step(step.id)?.applied.some((a) => a.kind === 'file' && a.path === change.path)) continue;
        journal.recordApplied(step.id, { kind: 'file', path: change.path, backup: await backups.backup(applyId, change.path) });
      }
      const records = (journal.step(step.id)?.applied ?? []).flatMap((a) => (a.kind === 'file' ? [a.backup] : []));
      // 2. Armed before anything changes: from here on, a kill, a hang-up or a reboot reverts.
      const script = renderRevertScript({
        id: revertId,
        backups: records,
        reload: guard.reload,
        ...(guard.cleanup ? { cleanup: guard.cleanup(facts) } : {}),
        stateDir: revertOpts.stateDir,
        ...(revertOpts.unitDir ? { unitDir: revertOpts.unitDir } : {}),
      });
      const handle = await armRevert(ctx.exec, ctx.files, { id: revertId, script, seconds: (typeof guard.seconds === 'function' ? guard.seconds(answers) : guard.seconds) ?? DEFAULT_REVERT_SECONDS, ...revertOpts });
      armed = true;
      journal.setStatus(step.id, 'applying', { note: `revert armed until ${new Date(handle.deadline).toISOString()} (${handle.armedWith})` });
      ctx.log(`the node reverts this change at ${new Date(handle.deadline).toISOString()} unless access is confirmed`);
      // 3. Files and commands, then the checks that must hold before anything is activated.
      await applyChanges(step.id, applyId, [...fileChanges, ...otherChanges], env);
      const pre = guard.beforeActivate ? await guard.beforeActivate(ctx, answers, facts) : [];
      if (!pre.every((c) => c.ok)) return await failNow(`refused before activating: ${failedChecks(pre)}`, pre);
      // 4. Activate (reload), then prove it: the state (verify), then live (prove).
      const activatedAt = new Date();
      activated = true;
      await applyChanges(step.id, applyId, serviceChanges, env);
      journal.setStatus(step.id, 'applied');
      let checks = await this.#verify(step, ctx, answers);
      if (checks.every((c) => c.ok) && guard.prove) checks = [...checks, ...(await this.#prove(guard, ctx, answers, facts))];
      if (!checks.every((c) => c.ok)) return await failNow(`verification failed: ${failedChecks(checks)}`, checks);
      // 5. Kept only when access is confirmed.
      if (!this.#opts.operator.confirmAccess) {
        journal.setStatus(step.id, 'applied', { note: `awaiting confirmation until ${new Date(handle.deadline).toISOString()}: run pve-baseline confirm from a new session` });
        return { ...base, outcome: 'awaiting-confirmation', checks, reason: `confirm from a new session before ${new Date(handle.deadline).toISOString()} (pve-baseline confirm), or the node reverts` };
      }
      return await this.#keepIfConfirmed(step, guard, ctx, answers, facts, { deadline: handle.deadline, since: activatedAt, revertId }, base, checks, failNow);
    } catch (error) {
      return failNow(`apply failed: ${(error as Error).message}`);
    }
  }

  /**
   * The change is active and proven automatically: keep it only when the
   * operator proves access before the deadline (or, on the console, chooses
   * to keep it); otherwise revert now.
   */
  async #keepIfConfirmed(
    step: AnyStep,
    guard: AccessGuard<any>,
    ctx: StepContext,
    answers: Answers,
    facts: unknown,
    armed: { deadline: number; since: Date; revertId: string },
    base: Omit<StepResult, 'outcome'>,
    checks: Check[],
    failNow: (reason: string, checks?: Check[]) => Promise<StepResult>,
  ): Promise<StepResult> {
    const { journal } = this.#opts;
    const revertOpts = { stateDir: journal.dir, ...this.#opts.revert };
    const decision = await this.#awaitAccess(step, guard, ctx, answers, facts, armed.deadline, armed.since, armed.revertId, revertOpts.stateDir);
    if (decision.kind === 'revert') return failNow(decision.reason, checks);
    const disarm = await disarmRevert(ctx.exec, ctx.files, armed.revertId, revertOpts);
    if (!disarm.disarmed) {
      journal.clearApplied(step.id);
      journal.setStatus(step.id, 'failed', { error: `the node reverted the change before it was confirmed: ${disarm.reverted ?? ''}`.trim() });
      return { ...base, outcome: 'failed', reason: 'the node reverted the change before it was confirmed', rolledBack: true, checks };
    }
    const confirmation: Check =
      decision.kind === 'proven'
        ? { label: decision.proof.by === 'login' ? 'a new login proved access' : 'access confirmed from a new session', ok: true, detail: decision.proof.detail }
        : { label: 'kept without a second login', ok: true, detail: "on the console, by the operator's choice" };
    journal.setStatus(step.id, 'verified', { note: `${confirmation.label}: ${confirmation.detail}` });
    return { ...base, outcome: 'verified', checks: [...checks, confirmation] };
  }

  /**
   * The journal says applied, but while nobody watched the node put the
   * change back (its timer, or the boot hook): record that, so the journal
   * stays truthful and the step is planned anew.
   */
  async #noteRevertByTheNode(step: AnyStep, ctx: StepContext): Promise<void> {
    const { journal } = this.#opts;
    const record = journal.step(step.id);
    if (this.#opts.dryRun || !step.guard || record?.status !== 'applied' || !record.applyId) return;
    const result = await revertResult(ctx.files, revertIdOf(record.applyId), { stateDir: journal.dir });
    if (!result?.startsWith('reverted')) return;
    journal.clearApplied(step.id);
    journal.setStatus(step.id, 'reverted', { note: `the node reverted it, unconfirmed: ${result}` });
  }

  /** A change of this step applied earlier and still waiting for confirmation (the revert is armed), if any. */
  async #awaitingRevert(step: AnyStep, ctx: StepContext): Promise<{ revertId: string; deadline: number; since: Date } | undefined> {
    const record = this.#opts.journal.step(step.id);
    if (!step.guard || record?.status !== 'applied' || !record.applyId) return undefined;
    const revertId = revertIdOf(record.applyId);
    const pending = (await pendingReverts(ctx.files, { stateDir: this.#opts.journal.dir })).find((p) => p.id === revertId && p.state === 'pending');
    if (!pending) return undefined;
    const appliedAt = [...record.history].reverse().find((h) => h.status === 'applied')?.at;
    return { revertId, deadline: pending.deadline, since: appliedAt ? new Date(appliedAt) : new Date(pending.deadline - 24 * 3600_000) };
  }

  /**
   * Started again while an earlier apply of this step awaits confirmation
   * (e.g. the session dropped during the countdown): the countdown goes on,
   * and a login the operator made since the reload counts.
   */
  async #resumeAwaiting(step: AnyStep, ctx: StepContext, answers: Answers, facts: unknown, armed: { revertId: string; deadline: number; since: Date }, base: Omit<StepResult, 'outcome'>): Promise<StepResult> {
    const until = new Date(armed.deadline).toISOString();
    if (this.#opts.dryRun || !this.#opts.operator.confirmAccess) {
      return { ...base, outcome: 'awaiting-confirmation', reason: `applied earlier; confirm from a new session before ${until} (pve-baseline confirm), or the node reverts` };
    }
    ctx.log(`applied earlier and not yet confirmed: the node reverts it at ${until} unless access is proven`);
    const failNow = async (reason: string, checks?: Check[]) => {
      ctx.log((await revertNow(ctx.exec, armed.revertId, { stateDir: this.#opts.journal.dir })).result);
      return this.#fail(step, ctx, base, reason, checks);
    };
    return this.#keepIfConfirmed(step, step.guard!, ctx, answers, facts, armed, base, [], failNow);
  }

  async #prove(guard: AccessGuard<any>, ctx: StepContext, answers: Answers, facts: unknown): Promise<Check[]> {
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
  async #awaitAccess(step: AnyStep, guard: AccessGuard<any>, ctx: StepContext, answers: Answers, facts: unknown, deadline: number, since: Date, revertId: string, stateDir: string): Promise<AccessDecision> {
    const stop = new AbortController();
    const access = guard.access?.(ctx, answers, facts);
    const never = new Promise<never>(() => undefined);
    // A source that ends without a proof (aborted, or its watch failed) does not end the wait: only the deadline does.
    const proofs: Promise<AccessProof>[] = [
      confirmedElsewhere(ctx.files, revertId, { stateDir, signal: stop.signal }).then((at) =>
        at ? { by: 'confirm' as const, detail: `pve-baseline confirm ran in another session (${at})` } : never,
      ),
    ];
    if (access) {
      proofs.push(
        access.watch(since, stop.signal).then(
          (who) => (who ? { by: 'login' as const, detail: who } : never),
          (error: Error) => (ctx.log(`watching for the login failed: ${error.message}`), never),
        ),
      );
    }
    const deadlineReached = new Promise<null>((resolve) => {
      const timer = setTimeout(() => resolve(null), Math.max(0, deadline - Date.now()));
      stop.signal.addEventListener('abort', () => (clearTimeout(timer), resolve(null)), { once: true });
    });
    const proof = Promise.race([...proofs, deadlineReached]);
    try {
      const decision = await this.#opts.operator.confirmAccess!({
        stepId: step.id,
        title: step.title,
        deadline,
        instructions: [...(access?.instructions ?? []), 'or, from a new session: pve-baseline confirm'],
        maySkip: ctx.node.session.kind === 'console',
        proof,
      });
      return decision;
    } catch (error) {
      // Ctrl+C while the node counts down: the change is not confirmed, so it goes back now.
      if (error instanceof OperatorStop) {
        this.requestStop();
        return { kind: 'revert', reason: 'stopped by the operator before access was confirmed' };
      }
      throw error;
    } finally {
      stop.abort();
    }
  }

  async #verify(step: AnyStep, ctx: StepContext, answers: Answers): Promise<Check[]> {
    this.#emit({ type: 'step-verifying', stepId: step.id });
    try {
      return await step.verify(ctx, answers);
    } catch (error) {
      return [{ label: 'verification ran', ok: false, detail: (error as Error).message }];
    }
  }

  /** A failed step is rolled back at once; the journal says what failed and whether the undo worked. */
  async #fail(step: AnyStep, ctx: StepContext, base: Omit<StepResult, 'outcome'>, reason: string, checks?: Check[]): Promise<StepResult> {
    const problems = await revertStep(step, { journal: this.#opts.journal, backups: this.#opts.backups, ctx });
    const rolledBack = problems.length === 0;
    const { journal } = this.#opts;
    const error = rolledBack ? `${reason} (rolled back)` : `${reason}; rollback incomplete: ${problems.join('; ')}`;
    journal.setStatus(step.id, 'failed', { error });
    return { ...base, outcome: 'failed', reason: error, rolledBack, ...(checks ? { checks } : {}) };
  }

  async #collectAnswers(step: AnyStep, facts: unknown, ctx: StepContext): Promise<Answers> {
    const { journal, operator, presetAnswers } = this.#opts;
    const preset = presetAnswers?.[step.id] ?? {};
    const remembered = journal.step(step.id)?.answers ?? {};
    const qctx: QuestionContext = { files: ctx.files };
    const answers: Answers = {};
    // Questions may depend on earlier answers (`when`), so walk them in order.
    for (const question of step.questions ?? []) {
      if (!applicableQuestions([question], answers, facts).length) continue;
      const field = `${step.id}.${question.id}`;
      if (question.id in preset) {
        const v = await validateAnswer(question, preset[question.id], answers, qctx);
        if (!v.ok) throw new AnswerError(field, v.message);
        // An answer given up front is the decision; its details are still shown (headless: logged).
        if (question.kind === 'text' && question.details && operator.confirmDetails && typeof v.value === 'string' && v.value !== '') {
          await operator.confirmDetails({ stepId: step.id, stepTitle: step.title, question }, await question.details(v.value, qctx));
        }
        answers[question.id] = v.value;
        continue;
      }
      if (question.kind !== 'password' && question.id in remembered) {
        const v = await validateAnswer(question, remembered[question.id], answers, qctx);
        if (v.ok) {
          answers[question.id] = v.value;
          continue;
        }
      }
      if (question.fileOnly) continue;
      const defaultValue = detectedDefault(question, facts);
      let error: string | undefined;
      for (;;) {
        const request = {
          stepId: step.id,
          stepTitle: step.title,
          question,
          ...(defaultValue !== undefined ? { defaultValue } : {}),
          ...(error ? { error } : {}),
        };
        const raw = await operator.answer(request);
        const v = await validateAnswer(question, raw, answers, qctx);
        if (!v.ok) {
          error = v.message;
          continue;
        }
        // Show what the answer turned out to be (e.g. key fingerprints) and let the person confirm it.
        if (question.kind === 'text' && question.details && operator.confirmDetails && typeof v.value === 'string' && v.value !== '') {
          const details = await question.details(v.value, qctx);
          if (!(await operator.confirmDetails(request, details))) {
            error = undefined;
            continue;
          }
        }
        answers[question.id] = v.value;
        break;
      }
    }
    const keep = persistableAnswers(step, answers);
    this.#answered.set(step.id, keep);
    if (!this.#opts.dryRun) journal.setAnswers(step.id, keep);
    return answers;
  }

  #emit(event: RunnerEvent): void {
    this.#opts.onEvent?.(event);
  }
}

function failedChecks(checks: readonly Check[]): string {
  return checks
    .filter((c) => !c.ok)
    .map((c) => (c.detail ? `${c.label} (${c.detail})` : c.label))
    .join('; ');
}

export type { StepOutcome, StepStatus };
