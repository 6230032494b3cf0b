/**
 * The runner drives steps in order: probe, ask, plan, review, apply, verify,
 * and rolls a step back when it fails. It is a plain async loop: the front-end
 * (wizard or headless) supplies an Operator and listens to events; nothing
 * here knows about terminals.
 */
import { randomBytes } from 'node:crypto';
import { applyChanges, rollbackApplied, type ApplyEnv } from './apply.ts';
import { describeChange, revealOf, type Change } from './change.ts';
import { changeScope, datacenterChanges, describeAppliedFrom, dropPendingDatacenterApply, expectDatacenterApply, forgetDatacenterApply, nodeName, readDatacenterRecord, settleDatacenterApply, type DatacenterEntry } from './datacenter.ts';
import { describeReboot, type RebootRecord } from './reboot.ts';
import { describeRunning, howItEnded, stillRunning, waitForEnd } from './surviving.ts';
import { awaitingConfirmation, GuardedApply, noteRevertByTheNode, planGuard, type GuardedHost } from './guarded-apply.ts';
import type { Journal, StepStatus } from './journal.ts';
import { orderSteps } from './order.ts';
import { applicableQuestions, detectedDefault, validateAnswer } from './questions.ts';
import { keptAnswers, persistableAnswers, type AnyStep, type Answers, type Check, type QuestionContext, type StepContext } from './step.ts';
import { AnswerError, MissingAnswerError, OperatorStop, StepSkip, type ChangeProgress, type Operator, type Plan, type RevealRequest, type RunnerEvent, type StepInfo, type StepOutcome, type StepResult } from './events.ts';
import type { BackupStore } from '../system/files.ts';

/** A result's reason with more said after it (what a reboot needs, after how an earlier run ended). */
function alsoSaid(result: StepResult, more: string): string {
  return result.reason ? `${result.reason}; ${more}` : more;
}

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
  /**
   * How the node reboots for a step that needs it (src/engine/reboot.ts):
   * `prepare` puts the check after the boot in place, `now` reboots. Without
   * it a needed reboot is only reported.
   */
  reboot?: { prepare(record: RebootRecord): Promise<void>; now(record: RebootRecord): Promise<void> };
}

/**
 * Undo everything the journal records for a step (newest first), then the
 * step's own afterRollback. Clears the record when all of it worked; returns
 * the problems met otherwise, keeping the record for another try.
 */
export async function revertStep(step: AnyStep, env: { journal: Journal; backups: BackupStore; ctx: StepContext }): Promise<string[]> {
  const applied = env.journal.step(step.id)?.applied ?? [];
  const applyId = env.journal.step(step.id)?.applyId;
  const problems = await rollbackApplied(applied, { exec: env.ctx.exec, backups: env.backups, onLine: env.ctx.log });
  if (!problems.length && step.afterRollback) {
    try {
      await step.afterRollback(env.ctx);
    } catch (error) {
      problems.push(`${step.id}: ${(error as Error).message}`);
    }
  }
  if (!problems.length) {
    env.journal.clearApplied(step.id);
    // The cluster-wide record of this apply goes with it (only this node's, only this apply's: src/engine/datacenter.ts).
    if (step.scope === 'datacenter') {
      for (const note of await forgetDatacenterApply(env.ctx.files, env.ctx.node, step.id, applyId)) env.ctx.log(note);
      await dropPendingDatacenterApply(env.ctx.files, env.journal.dir, step.id).catch(() => undefined);
    }
  }
  return problems;
}

export { AnswerError, MissingAnswerError };

export class Runner {
  readonly #opts: RunnerOptions;
  readonly #steps: AnyStep[];
  #stopRequested = false;
  #current: string | undefined;
  /** Answers given in this run (secrets excluded), for later steps' answersOf. */
  readonly #answered = new Map<string, Answers>();
  /** What was said of a damaged datacenter record, said once a run. */
  readonly #recordNotes = new Set<string>();

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
      let result = await this.#runStep(step, passed);
      if ((result.outcome === 'verified' || result.outcome === 'compliant') && step.rebootNeeded) result = await this.#rebootAfter(step, result);
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
    const ctx = this.#contextFor(step);

    const unmet = step.requires?.(ctx.node);
    if (unmet) return { ...base, outcome: 'not-applicable', reason: unmet };
    const earlier = await this.#earlierCommand(step, ctx);
    if (typeof earlier === 'object') return { ...base, ...earlier };
    const result = await this.#probeAndApply(step, ctx, base);
    return earlier ? { ...result, reason: result.reason ? `${earlier}; ${result.reason}` : earlier } : result;
  }

  /**
   * A command an earlier run left running (CommandChange.survivesExit): the
   * run waits for it, following its log, and says how it ended; a dry run
   * only says it still runs.
   */
  async #earlierCommand(step: AnyStep, ctx: StepContext): Promise<string | Pick<StepResult, 'outcome' | 'reason'> | undefined> {
    const { journal } = this.#opts;
    const running = journal.step(step.id)?.running;
    if (!running) return undefined;
    const waited = await stillRunning(running, ctx.files, ctx.node.bootId);
    if (waited) {
      if (this.#opts.dryRun) return { outcome: 'skipped', reason: `${describeRunning(running)}, started by an earlier pve-baseline, still runs; its output: ${running.log}` };
      ctx.log(`${describeRunning(running)}, started by an earlier pve-baseline, still runs: waiting for it to end (its output: ${running.log})`);
      await waitForEnd(running, { files: ctx.files, bootId: ctx.node.bootId, onLine: ctx.log });
    }
    const ended = await howItEnded(running, ctx.files, { bootId: ctx.node.bootId, waited });
    if (!this.#opts.dryRun) journal.setRunning(step.id, undefined);
    return ended;
  }

  async #probeAndApply(step: AnyStep, ctx: StepContext, base: Omit<StepResult, 'outcome'>): Promise<StepResult> {
    const { journal } = this.#opts;
    let plan: Plan;
    let answers: Answers;
    let facts: unknown;
    try {
      facts = await step.probe(ctx);
      const na = step.notApplicable?.(facts, ctx.node);
      if (na) return { ...base, outcome: 'not-applicable', reason: na };
      answers = await this.#collectAnswers(step, facts, ctx);
      if (!this.#opts.dryRun) await noteRevertByTheNode(step, ctx, journal);
      const awaiting = await awaitingConfirmation(step, ctx, journal);
      if (awaiting) {
        if (this.#opts.dryRun) return { ...base, outcome: 'awaiting-confirmation', reason: `applied earlier; confirm from a new session before ${new Date(awaiting.deadline).toISOString()} (pve-baseline confirm), or the node reverts` };
        return await this.#guarded(step, ctx, answers, facts, base).resume(awaiting);
      }
      const changes = step.plan(facts, answers, ctx.node);
      const notes = changes.length ? step.preview?.(facts, answers, changes) : undefined;
      plan = {
        stepId: step.id,
        title: step.title,
        risk: step.risk,
        changes,
        ...(step.guard && changes.length ? { guard: planGuard(step.guard, changes, answers, facts) } : {}),
        ...(notes?.length ? { notes } : {}),
      };
      // A plan that would shut the operator out is refused before it is shown; the journal is left as it was.
      const refusals = plan.changes.length && step.preflight ? step.preflight(facts, answers, ctx.node) : [];
      if (!refusals.every((c) => c.ok)) return { ...base, outcome: 'failed', checks: refusals, reason: `refused before any change: ${failedChecks(refusals)}` };
    } catch (error) {
      if (error instanceof MissingAnswerError) {
        const question = (step.questions ?? []).find((q: { id: string }) => `${step.id}.${q.id}` === error.field);
        return { ...base, outcome: 'skipped', reason: question?.interactiveOnly ? `needs the wizard: ${question.interactiveOnly}` : `needs an answer for ${error.field}` };
      }
      if (error instanceof StepSkip) return { ...base, outcome: 'skipped', reason: 'skipped by the operator' };
      if (error instanceof AnswerError || error instanceof OperatorStop) throw error;
      return { ...base, outcome: 'failed', reason: `could not probe or plan: ${(error as Error).message}` };
    }

    if (plan.changes.length === 0) {
      const checks = await this.#verify(step, ctx, answers);
      if (!checks.every((c) => c.ok)) return { ...base, outcome: 'failed', checks, reason: failedChecks(checks) };
      // Compliant here because another node applied the shared settings: say which, and when.
      const elsewhere = await this.#appliedElsewhere(step, ctx);
      const reason = elsewhere ? `datacenter-wide: ${describeAppliedFrom(elsewhere)}` : undefined;
      if (!this.#opts.dryRun && journal.status(step.id) !== 'verified') journal.setStatus(step.id, 'verified', { note: reason ?? 'compliant' });
      return { ...base, outcome: 'compliant', checks, ...(reason ? { reason } : {}) };
    }

    // What is shared by the cluster and what is this node's own, said before anything changes.
    const scoped = await this.#scopeNotes(step, ctx, plan.changes);
    if (scoped.notes.length) plan = { ...plan, notes: [...scoped.notes, ...(plan.notes ?? [])] };
    const said = (r: StepResult): StepResult => (scoped.reason && (r.outcome === 'planned' || r.outcome === 'verified' || r.outcome === 'awaiting-confirmation') ? { ...r, reason: alsoSaid(r, scoped.reason) } : r);

    this.#emit({ type: 'step-planned', plan });
    const count = { ...base, changes: plan.changes.length };
    if (this.#opts.dryRun) return said({ ...count, outcome: 'planned' });

    // Values shown once (recovery keys, a token's secret) need someone to show them to.
    const reveals = plan.changes.flatMap((c) => {
      const reveal = revealOf(c);
      return reveal && !reveal.saveTo ? [reveal.field] : [];
    });
    if (reveals.length && !this.#opts.operator.reveal) return { ...count, outcome: 'skipped', reason: `needs the wizard: it shows the ${reveals.join(', ')} once, and nothing keeps them` };

    const decision = await this.#opts.operator.review(plan);
    if (decision === 'stop') {
      this.requestStop();
      return { ...count, outcome: 'skipped', reason: 'stopped before applying' };
    }
    if (decision === 'skip') return { ...count, outcome: 'skipped', reason: 'skipped by the operator' };
    if (typeof decision === 'object') return { ...count, outcome: 'skipped', reason: decision.skip };

    return said(await this.#apply(step, ctx, plan, answers, facts, count));
  }

  /**
   * The datacenter record's entry for a datacenter step when it names
   * another node (src/engine/datacenter.ts); a damaged record is said once.
   */
  async #appliedElsewhere(step: AnyStep, ctx: StepContext): Promise<DatacenterEntry | undefined> {
    if (step.scope !== 'datacenter') return undefined;
    const record = await readDatacenterRecord(ctx.files);
    for (const note of record.notes) {
      if (this.#recordNotes.has(note)) continue;
      this.#recordNotes.add(note);
      ctx.log(note);
    }
    const entry = record.entries[step.id];
    return entry && entry.node !== nodeName(ctx.node) ? entry : undefined;
  }

  /**
   * A datacenter step's plan in a cluster: its datacenter changes are shared
   * by every node (a note says who applied them last, without refusing), and
   * its node changes (a change with scope 'node') are this node's own. With
   * only node changes left, the datacenter part is compliant: the result says so.
   */
  async #scopeNotes(step: AnyStep, ctx: StepContext, changes: readonly Change[]): Promise<{ notes: string[]; reason?: string }> {
    if (step.scope !== 'datacenter') return { notes: [] };
    const me = nodeName(ctx.node);
    const shared = datacenterChanges(step, changes);
    const own = changes.filter((c) => changeScope(c, step) === 'node');
    const elsewhere = await this.#appliedElsewhere(step, ctx);
    const notes: string[] = [];
    let reason: string | undefined;
    if (elsewhere && shared.length) {
      notes.push(`These settings are shared by every node of the cluster (/etc/pve); they were last ${describeAppliedFrom(elsewhere)}. Applying them here changes them for every node.`);
    } else if (elsewhere) {
      reason = `the datacenter part is compliant (${describeAppliedFrom(elsewhere)}); the changes are this node's own`;
      notes.push(`The datacenter part is compliant (${describeAppliedFrom(elsewhere)}); what is planned here changes this node (${me}) only.`);
    }
    if (own.length && shared.length) notes.push(`This node's own (${me}), not shared: ${own.map(describeChange).join('; ')}.`);
    return { notes, ...(reason ? { reason } : {}) };
  }

  /** After a datacenter step is verified (or kept): record this node's apply cluster-wide. */
  async #settleDatacenter(step: AnyStep, ctx: StepContext): Promise<void> {
    if (step.scope !== 'datacenter') return;
    const notes = await settleDatacenterApply(ctx.files, this.#opts.journal.dir, ctx.node, step.id, this.#opts.journal.step(step.id)?.applyId).catch((error: Error) => [`the datacenter record was not written: ${error.message}`]);
    for (const note of notes) ctx.log(note);
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
    // How many shared changes this apply makes, kept until it is verified or kept (a confirmation may come from another session).
    if (step.scope === 'datacenter') for (const note of await expectDatacenterApply(ctx.files, journal.dir, step.id, applyId, datacenterChanges(step, plan.changes).length)) ctx.log(note);
    this.#emit({ type: 'step-applying', stepId: step.id });
    const reveal = this.#opts.operator.reveal?.bind(this.#opts.operator);
    const env = {
      exec: ctx.exec,
      files: ctx.files,
      backups,
      journal,
      onLine: ctx.log,
      ...(ctx.api ? { api: ctx.api } : {}),
      ...(reveal ? { reveal: (r: Omit<RevealRequest, 'stepId'>) => reveal({ ...r, stepId: step.id }) } : {}),
      onProgress: (index: number, progress: ChangeProgress) => this.#emit({ type: 'change-progress', stepId: step.id, index, progress }),
      onChange: (index: number, change: Plan['changes'][number], phase: 'started' | 'finished') =>
        this.#emit(phase === 'started' ? { type: 'change-started', stepId: step.id, index, change } : { type: 'change-finished', stepId: step.id, index }),
    };
    if (step.guard) return this.#guarded(step, ctx, answers, facts, base).apply(plan, applyId, env);
    try {
      await applyChanges(step.id, applyId, plan.changes, env);
    } catch (error) {
      return this.#fail(step, ctx, base, `apply failed: ${(error as Error).message}`);
    }
    journal.setStatus(step.id, 'applied');
    const checks = await this.#verify(step, ctx, answers);
    if (!checks.every((c) => c.ok)) return this.#fail(step, ctx, base, `verification failed: ${failedChecks(checks)}`, checks);
    journal.setStatus(step.id, 'verified');
    await this.#settleDatacenter(step, ctx);
    return { ...base, outcome: 'verified', checks };
  }

  /**
   * After a step that may need a reboot: nothing when the node needs none
   * (and a journaled need from before is done); otherwise journal it, put the
   * check after the boot in place, and reboot now, later, or (headless) stop
   * so the caller can reboot and run again.
   */
  async #rebootAfter(step: AnyStep, result: StepResult): Promise<StepResult> {
    const { journal } = this.#opts;
    const ctx = this.#contextFor(step);
    let need;
    try {
      need = await step.rebootNeeded!(ctx);
    } catch (error) {
      return { ...result, reason: alsoSaid(result, `could not tell whether a reboot is needed: ${(error as Error).message}`) };
    }
    if (!need) {
      if (!this.#opts.dryRun && journal.step(step.id)?.reboot) journal.setReboot(step.id, undefined);
      return result;
    }
    // check and dry runs say so, and change nothing.
    if (this.#opts.dryRun) return { ...result, reason: alsoSaid(result, `a reboot is pending: ${need.reason}`) };
    const record: RebootRecord = { ...need, afterStep: step.id, requestedAt: new Date().toISOString(), bootId: ctx.node.bootId };
    journal.setReboot(step.id, record);
    try {
      await this.#opts.reboot?.prepare(record);
    } catch (error) {
      ctx.log(`the check after the reboot could not be put in place: ${(error as Error).message}`);
    }
    const decision = this.#opts.operator.reboot ? await this.#opts.operator.reboot({ stepId: step.id, stepTitle: step.title, ...need }) : undefined;
    if (decision === 'later') return { ...result, reason: alsoSaid(result, `a reboot is needed (${need.reason}); reboot when it suits, then run pve-baseline again`) };
    this.requestStop();
    if (decision === 'now' && this.#opts.reboot) {
      ctx.log(describeReboot(record));
      await this.#opts.reboot.now(record);
      return { ...result, reason: alsoSaid(result, `rebooting: ${need.reason}`), reboot: record };
    }
    return { ...result, reason: alsoSaid(result, `a reboot is needed: ${need.reason}; reboot the node and run the same command again`), reboot: record };
  }

  /** What a step's probe, verify and reboot check get: the node, its log line, other steps' answers. */
  #contextFor(step: AnyStep): StepContext {
    const { journal } = this.#opts;
    return {
      ...this.#opts.ctx,
      log: (line) => this.#emit({ type: 'output', stepId: step.id, line }),
      answersOf: (other) => keptAnswers(other, this.#answered.get(other.id) ?? journal.step(other.id)?.answers),
      journalRecords: () => journal.all(),
    };
  }

  /** The lockout protocol for one step, on this runner's journal, operator and events. */
  #guarded(step: AnyStep, ctx: StepContext, answers: Answers, facts: unknown, base: Omit<StepResult, 'outcome'>): GuardedApply {
    const host: GuardedHost = {
      journal: this.#opts.journal,
      backups: this.#opts.backups,
      operator: this.#opts.operator,
      revert: { stateDir: this.#opts.journal.dir, ...this.#opts.revert },
      emit: (event) => this.#emit(event),
      requestStop: () => this.requestStop(),
      verify: (s, c, a) => this.#verify(s, c, a),
      fail: (s, c, b, reason, checks) => this.#fail(s, c, b, reason, checks),
      kept: (s, c) => this.#settleDatacenter(s, c),
    };
    return new GuardedApply(host, { step, guard: step.guard!, ctx, answers, facts, base });
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
    const qctx: QuestionContext = { files: ctx.files, answersOf: ctx.answersOf, facts };
    const answers: Answers = {};
    // Questions may depend on earlier answers (`when`), so walk them in order.
    for (const question of step.questions ?? []) {
      if (!applicableQuestions([question], answers, facts).length) continue;
      const field = `${step.id}.${question.id}`;
      if (question.id in preset) {
        const v = await validateAnswer(question, preset[question.id], answers, { ...qctx, from: 'file' });
        if (!v.ok) throw new AnswerError(field, v.message);
        // An answer given up front is the decision; its details are still shown (headless: logged).
        if (question.kind === 'text' && question.details && operator.confirmDetails && typeof v.value === 'string' && v.value !== '') {
          await operator.confirmDetails({ stepId: step.id, stepTitle: step.title, question }, await question.details(v.value, qctx));
        }
        answers[question.id] = v.value;
        continue;
      }
      // A secret is never remembered (an old journal may still hold one: it is not used).
      if (question.kind !== 'password' && !question.codec?.secret && question.id in remembered) {
        const v = await validateAnswer(question, remembered[question.id], answers, { ...qctx, from: 'remembered' });
        if (v.ok) {
          answers[question.id] = v.value;
          continue;
        }
      }
      if (question.fileOnly) continue;
      const defaultValue = detectedDefault(question, facts);
      let error: string | undefined;
      for (;;) {
        const display = question.display?.(facts, answers);
        // The QR library is loaded only now, when a code is to be shown.
        if (display?.qr && !display.qr.matrix) display.qr.matrix = (await import('../tfa/qr-matrix.ts')).qrMatrix(display.qr.text.reveal());
        const request = {
          stepId: step.id,
          stepTitle: step.title,
          question,
          ...(defaultValue !== undefined ? { defaultValue } : {}),
          ...(error ? { error } : {}),
          ...(display ? { display } : {}),
        };
        const raw = await operator.answer(request);
        const v = await validateAnswer(question, raw, answers, { ...qctx, from: 'typed' });
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
