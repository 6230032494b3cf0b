/**
 * A long command's progress through the engine: a real child process writes
 * apt's status lines to fd 3 (as `apt-get -o APT::Status-Fd=3` does) and
 * ordinary output to stdout; the runner reports the progress a few times a
 * second at most, configuration files kept become output lines, the wizard's
 * state and its bar follow, and headless output prints a line every few
 * seconds only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { CommandChange } from '../../src/engine/change.ts';
import type { RunnerEvent } from '../../src/engine/events.ts';
import type { Step } from '../../src/engine/step.ts';
import { plainEventPrinter, PLAIN_PROGRESS_EVERY_MS } from '../../src/cli/plain-output.ts';
import { initialState, wizardReducer } from '../../screens/state/wizard-reducer.ts';
import { ProgressBar } from '../../screens/components/StepProgress.tsx';
import { engine } from '../fixtures/harness.ts';
import { tempDir } from '../fixtures/temp.ts';
import { renderScreen } from './helpers.tsx';

/** What apt writes on its status channel during a small upgrade (apt's README.progress-reporting formats). */
const STATUS = [
  'dlstatus:1:0:Retrieving file 1 of 2',
  'dlstatus:2:50:Retrieving file 2 of 2',
  'pmstatus:pve-manager:10:Preparing pve-manager (amd64)',
  'pmstatus:pve-manager:30:Unpacking pve-manager (amd64)',
  "pmconffile:/etc/default/pveproxy:50.0000:'/etc/default/pveproxy' '/etc/default/pveproxy.dpkg-new' 1 1 ",
  'pmstatus:pve-manager:70:Configuring pve-manager (amd64)',
  'pmstatus:pve-manager:100:Installed pve-manager (amd64)',
];

function upgradeStep(): Step {
  // A pause between lines, so the reports are spread over time like a real upgrade's.
  const script = 'for line in "$@"; do printf "%s\\n" "$line" >&3; echo "Setting up..."; sleep 0.1; done';
  const change: CommandChange = { kind: 'command', argv: ['sh', '-c', script, 'sh', ...STATUS], progress: 'apt', reason: 'the upgrade' };
  return { id: 'upgrade', title: 'Upgrade', summary: 'u', scope: 'node', risk: 'safe', probe: async () => ({}), plan: () => [change], verify: async () => [{ label: 'ok', ok: true }] };
}

test('the runner reports apt\'s progress from fd 3, rising to 100 and done, at most every 250 ms; a kept configuration file is an output line', async (t) => {
  const dir = await tempDir(t);
  const { runner, events } = engine({ stateDir: path.join(dir, 'state'), steps: [upgradeStep()] });
  const [result] = await runner.run();
  assert.equal(result!.outcome, 'verified');
  const reports = events.flatMap((e) => (e.type === 'change-progress' ? [e.progress] : []));
  assert.ok(reports.length >= 2 && reports.length <= STATUS.length + 1, `${reports.length} reports`);
  const percents = reports.map((r) => r.percent);
  assert.deepEqual([...percents].sort((a, b) => a - b), percents, 'never goes back');
  assert.deepEqual(reports.at(-1), { percent: 100, label: 'done: 1 package(s) configured', done: true });
  const output = events.flatMap((e) => (e.type === 'output' ? [e.line] : []));
  assert.ok(output.includes("kept your /etc/default/pveproxy (pve-manager); the package's version is beside it as /etc/default/pveproxy.dpkg-dist"), output.join('\n'));
  assert.ok(output.includes('Setting up...'), 'stdout still reaches the tail');
  assert.ok(!output.some((l) => l.startsWith('pmstatus:')), 'the status channel is not output');
});

test('a status held back by the interval is reported when the interval ends, not only with the next one (a kernel\'s long postinst shows as Configuring)', async (t) => {
  const dir = await tempDir(t);
  const script = 'echo "pmstatus:a:10:Unpacking a (amd64)" >&3; sleep 0.05; echo "pmstatus:k:50:Configuring k (amd64)" >&3; sleep 1; echo "pmstatus:k:100:Installed k (amd64)" >&3';
  const step: Step = { ...upgradeStep(), plan: () => [{ kind: 'command', argv: ['sh', '-c', script], progress: 'apt', reason: 'a pause after a status' }] };
  const { runner, events } = engine({ stateDir: path.join(dir, 'state'), steps: [step] });
  const [result] = await runner.run();
  assert.equal(result!.outcome, 'verified');
  const labels = events.flatMap((e) => (e.type === 'change-progress' ? [e.progress.label] : []));
  assert.deepEqual(labels, ['Unpacking a (amd64)', 'Configuring k (amd64)', 'Installed k (amd64)', 'done: 1 package(s) configured'], 'Configuring is reported while the pause lasts');
});

test('the wizard\'s state carries the running command\'s progress, and its bar draws it', async () => {
  const plan = { stepId: 'upgrade', title: 'Upgrade', risk: 'safe' as const, changes: [{ kind: 'command' as const, argv: ['apt-get'], progress: 'apt' as const, reason: 'r' }] };
  let state = wizardReducer(initialState, { type: 'runner', event: { type: 'step-planned', plan } } as never);
  for (const event of [
    { type: 'step-applying', stepId: 'upgrade' },
    { type: 'change-started', stepId: 'upgrade', index: 0, change: plan.changes[0] },
    { type: 'change-progress', stepId: 'upgrade', index: 0, progress: { percent: 42, label: 'Unpacking pve-manager (amd64)', done: false } },
  ] as RunnerEvent[]) {
    state = wizardReducer(state, { type: 'runner', event } as never);
  }
  assert.deepEqual(state.progress?.detail, { percent: 42, label: 'Unpacking pve-manager (amd64)', done: false });
  const screen = renderScreen(<ProgressBar percent={42} label="Unpacking pve-manager (amd64)" width={80} />);
  assert.equal(screen.frame(), '  [██████████░░░░░░░░░░░░░░]  42%  Unpacking pve-manager (amd64)');
  const consoleBar = renderScreen(<ProgressBar percent={100} label="done" width={80} />, { TERM: 'linux', LANG: 'C.UTF-8', NO_COLOR: '1' });
  assert.equal(consoleBar.frame(), '  [########################] 100%  done');
});

test('headless output prints the first report, then one every few seconds, and the last', () => {
  const lines: string[] = [];
  let clock = 0;
  const print = plainEventPrinter((l) => lines.push(l), () => 1, () => clock);
  const report = (percent: number, done = false) => print({ type: 'change-progress', stepId: 'u', index: 0, progress: { percent, label: `at ${percent}`, done } });
  report(1);
  clock += 1000;
  report(5);
  clock += PLAIN_PROGRESS_EVERY_MS;
  report(50);
  clock += 100;
  report(60);
  report(100, true);
  assert.deepEqual(lines, ['    1% at 1', '    50% at 50', '    100% at 100']);
});
