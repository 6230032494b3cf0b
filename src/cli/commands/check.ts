/**
 * `pve-baseline check [--json]`: probe and plan every step with what the
 * journal remembers (or detected defaults); change nothing.
 */
import type { Check } from '../../engine/step.ts';
import type { PlanGuard, StepResult } from '../../engine/events.ts';
import type { AnyStep, Scope } from '../../engine/step.ts';
import { readDatacenterRecord } from '../../engine/datacenter.ts';
import { describeChange } from '../../engine/change.ts';
import { describeNode } from '../../system/detect.ts';
import { EXIT } from '../args.ts';
import { HeadlessOperator } from '../headless.ts';
import type { Runtime } from '../runtime.ts';
import type { Output } from './io.ts';
import { createRunner, readOnlyJournal } from './runner.ts';

/** What `check --json` prints. README.md ("The `check --json` contract") documents every field; keep the two together. */
export interface CheckReport {
  node: { hostname: string; proxmox: string | null; debian: string | null };
  compliant: boolean;
  steps: {
    id: string;
    title: string;
    /** 'datacenter': shared by every node of a cluster (/etc/pve); 'node': this node's own. */
    scope: Scope;
    status: CheckStatus;
    /** For a datacenter step the shared record names: the node that applied it, and when. */
    appliedFrom?: { node: string; at: string };
    reason?: string;
    changes: { kind: string; summary: string; reason: string }[];
    /** For a change that can cut access: the revert the node would own while access is proven. */
    guard?: PlanGuard;
    /** What verify found, when the step was compliant or its checks failed. */
    checks?: Check[];
  }[];
}

export type CheckStatus = 'compliant' | 'drift' | 'not-applicable' | 'error';

/**
 * A failed step whose checks failed (verification, or a pre-flight refusing
 * its plan) found the node not as intended: that is drift. A failure without
 * checks means the step could not probe or plan at all: an error.
 */
function checkStatus(r: StepResult): CheckStatus {
  switch (r.outcome) {
    case 'compliant':
    case 'not-applicable':
      return r.outcome;
    case 'failed':
      return r.checks?.length ? 'drift' : 'error';
    default:
      return 'drift';
  }
}

export async function checkCommand(runtime: Runtime, steps: readonly AnyStep[], options: { json: boolean }, io: Output): Promise<number> {
  const report = await examine(runtime, steps);
  if (options.json) io.out(JSON.stringify(report, null, 2));
  else printReport(runtime, report, io);
  // 2 when some step could not be checked at all, even if others drift: the audit is incomplete.
  if (report.steps.some((s) => s.status === 'error')) return EXIT.usage;
  return report.compliant ? EXIT.ok : EXIT.failedOrDrift;
}

async function examine(runtime: Runtime, steps: readonly AnyStep[]): Promise<CheckReport> {
  const plans = new Map<string, CheckReport['steps'][number]['changes']>();
  const guards = new Map<string, PlanGuard>();
  const runner = createRunner(runtime, steps, {
    journal: readOnlyJournal(runtime),
    operator: new HeadlessOperator(false),
    dryRun: true,
    onEvent: (event) => {
      if (event.type === 'step-planned') {
        if (event.plan.guard) guards.set(event.plan.stepId, event.plan.guard);
        plans.set(
          event.plan.stepId,
          event.plan.changes.map((c) => ({ kind: c.kind, summary: describeChange(c), reason: c.reason })),
        );
      }
    },
  });
  const results = await runner.run();
  // Read after the run, as the steps saw it; never written by check.
  const datacenter = await readDatacenterRecord(runtime.files);
  const scopeOf = (id: string): Scope => steps.find((s) => s.id === id)?.scope ?? 'node';
  return {
    node: {
      hostname: runtime.node.hostname,
      proxmox: runtime.node.proxmox?.version ?? null,
      debian: runtime.node.debian ? `${runtime.node.debian.version} (${runtime.node.debian.codename})` : null,
    },
    compliant: results.every((r) => r.outcome === 'compliant' || r.outcome === 'not-applicable'),
    steps: results.map((r) => ({
      id: r.stepId,
      title: r.title,
      scope: scopeOf(r.stepId),
      status: checkStatus(r),
      ...(scopeOf(r.stepId) === 'datacenter' && datacenter.entries[r.stepId] ? { appliedFrom: { node: datacenter.entries[r.stepId]!.node, at: datacenter.entries[r.stepId]!.at } } : {}),
      ...(r.reason ? { reason: r.reason } : {}),
      changes: plans.get(r.stepId) ?? [],
      ...(guards.has(r.stepId) ? { guard: guards.get(r.stepId)! } : {}),
      ...(r.checks?.length ? { checks: r.checks } : {}),
    })),
  };
}

function printReport(runtime: Runtime, report: CheckReport, io: Output): void {
  io.out(`pve-baseline check on ${describeNode(runtime.node)}`);
  const width = Math.max(...report.steps.map((s) => s.id.length), 4);
  for (const s of report.steps) {
    io.out(`${s.id.padEnd(width)}  ${s.status.padEnd(14)}  ${s.title}${s.reason ? ` (${s.reason})` : ''}`);
    if (s.guard) io.out(`${' '.repeat(width + 18)}under a revert the node owns: ${s.guard.windowSeconds} s to prove access; live ${s.guard.activation === 'on-write' ? 'when written' : 'on reload'}`);
    for (const c of s.changes) {
      io.out(`${' '.repeat(width + 18)}would ${c.summary}`);
      // Why: for a hand-edited file this names the settings that changed.
      io.out(`${' '.repeat(width + 20)}why: ${c.reason}`);
    }
  }
  const drifting = report.steps.filter((s) => s.status !== 'compliant' && s.status !== 'not-applicable').length;
  io.out(report.compliant ? 'Compliant.' : `Drift in ${drifting} of ${report.steps.length} steps.`);
}
