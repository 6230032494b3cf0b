/** Step order: the catalogue's order, adjusted so every step comes after what it depends on. */
import type { AnyStep } from './step.ts';

export function orderSteps(steps: readonly AnyStep[]): AnyStep[] {
  const byId = new Map(steps.map((s) => [s.id, s]));
  for (const step of steps) {
    for (const dep of step.dependsOn ?? []) {
      if (!byId.has(dep)) throw new Error(`step ${step.id} depends on unknown step ${dep}`);
    }
  }
  const ordered: AnyStep[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (step: AnyStep, trail: string[]) => {
    const seen = state.get(step.id);
    if (seen === 'done') return;
    if (seen === 'visiting') throw new Error(`steps depend on each other in a cycle: ${[...trail, step.id].join(' -> ')}`);
    state.set(step.id, 'visiting');
    for (const dep of step.dependsOn ?? []) visit(byId.get(dep)!, [...trail, step.id]);
    state.set(step.id, 'done');
    ordered.push(step);
  };
  for (const step of steps) visit(step, []);
  return ordered;
}
