import { afterEach, test } from 'node:test';
import { cleanup } from 'ink-testing-library';
import assert from 'node:assert/strict';
import { App } from '../../screens/App.tsx';
import { WizardStore } from '../../screens/state/wizard-store.ts';
import type { Plan, Review, StepInfo } from '../../src/engine/events.ts';
import { fakeNode, KEY, renderScreen } from './helpers.tsx';

// Unmount whatever a failed test left mounted, so no spinner keeps the process alive.
afterEach(() => cleanup());

const STEPS: StepInfo[] = [
  { id: 'sysctl', title: 'Kernel and network sysctl settings', summary: 'Hides kernel addresses.', risk: 'safe', scope: 'node', journaled: 'verified' },
  { id: 'admin', title: 'Named admin account', summary: 'Stop using root for daily work.', risk: 'safe', scope: 'node', journaled: 'pending' },
  { id: 'sshd', title: 'sshd hardening', summary: 'Keys only, verified from a second session.', risk: 'lockout', scope: 'node', journaled: 'pending' },
];

const FILE_PLAN: Plan = {
  stepId: 'sysctl',
  title: 'Kernel and network sysctl settings',
  risk: 'safe',
  changes: [
    {
      kind: 'file',
      path: '/etc/sysctl.d/90-pve-baseline.conf',
      before: 'kernel.kptr_restrict = 0\nkernel.dmesg_restrict = 1\n',
      after: 'kernel.kptr_restrict = 2\nkernel.dmesg_restrict = 1\n',
      reason: 'keeps the settings across reboots',
    },
    { kind: 'command', argv: ['sysctl', '-p', '/etc/sysctl.d/90-pve-baseline.conf'], reason: 'sets the values now' },
  ],
};

const LOCKOUT_PLAN: Plan = {
  stepId: 'sshd',
  title: 'sshd hardening',
  risk: 'lockout',
  changes: [{ kind: 'service', unit: 'ssh.service', action: 'reload', reason: 'apply the new settings; open sessions survive' }],
};

function mount(store = new WizardStore(), interrupt: () => void = () => store.interrupt(() => undefined)) {
  const screen = renderScreen(
    <App store={store} node={fakeNode()} version="0.1.0" notes={[]} journalPath="/var/lib/pve-baseline/journal.json" backupsPath="/var/lib/pve-baseline/backups" onInterrupt={interrupt} />,
  );
  return { store, screen };
}

/** Put the store into "step N is running" as the runner would. */
function startStep(store: WizardStore, index: number) {
  store.onEvent({ type: 'run-started', steps: STEPS });
  store.onEvent({ type: 'step-started', stepId: STEPS[index]!.id, index });
}

test('welcome: the step list is browsable and the highlighted step explains itself', async () => {
  const { store, screen } = mount();
  store.onEvent({ type: 'run-started', steps: STEPS, resumeAt: { stepId: 'admin', index: 1 } });
  const started = store.waitForStart();
  let frame = await screen.waitForText('resuming at step 2 of 3: Named admin account');
  assert.match(frame, /Node\s+pve1 · Proxmox VE 9\.1\.2 · Debian 13 \(trixie\)/);
  assert.match(frame, /SSH from 10\.77\.7\.1: keep this session open/);
  assert.match(frame, /✔\s+1 Kernel and network sysctl settings\s+done before/);
  // The cursor starts on the step being resumed.
  assert.match(frame, /❯\s+2 Named admin account/);
  assert.match(frame, /Stop using root for daily work\./);

  await screen.press(KEY.down);
  frame = await screen.waitForText('Keys only, verified from a second session.');
  assert.match(frame, /❯\s+3 sshd hardening/);
  assert.match(frame, /\[LOCKOUT RISK\]/);

  await screen.press(KEY.up, KEY.up);
  frame = await screen.waitForText('Hides kernel addresses.');
  assert.match(frame, /❯\s+1 Kernel and network sysctl settings/);

  await screen.press(KEY.enter);
  assert.equal(await started, true);
  screen.unmount();
});

test('welcome: q quits without starting', async () => {
  const { store, screen } = mount();
  store.onEvent({ type: 'run-started', steps: STEPS });
  const started = store.waitForStart();
  await screen.waitForText('enter start');
  await screen.press('q');
  assert.equal(await started, false);
  screen.unmount();
});

test('plan preview: shows the diff, every argv and the reasons; enter applies', async () => {
  const { store, screen } = mount();
  startStep(store, 0);
  const decision = store.review(FILE_PLAN);
  const frame = await screen.waitForText('Plan: 1 to change, 1 command to run.');
  assert.match(frame, /Step 1 of 3 · Kernel and network sysctl settings \[safe\]/);
  assert.match(frame, /~ edit \/etc\/sysctl\.d\/90-pve-baseline\.conf/);
  assert.match(frame, /why: keeps the settings across reboots/);
  assert.match(frame, /--- a\/etc\/sysctl\.d\/90-pve-baseline\.conf/);
  assert.match(frame, /-kernel\.kptr_restrict = 0/);
  assert.match(frame, /\+kernel\.kptr_restrict = 2/);
  assert.match(frame, / kernel\.dmesg_restrict = 1/);
  assert.match(frame, /argv: sysctl -p \/etc\/sysctl\.d\/90-pve-baseline\.conf/);
  assert.match(frame, /enter apply · s skip this step · q stop here/);
  await screen.press(KEY.enter);
  assert.equal(await decision, 'apply');
  await screen.waitForText('Applying'); // back to progress, prompt gone
  assert.doesNotMatch(screen.frame(), /enter apply/);
  screen.unmount();
});

test('plan preview: s skips, and a long plan scrolls', async () => {
  const { store, screen } = mount();
  startStep(store, 0);
  const long: Plan = {
    ...FILE_PLAN,
    changes: [{ kind: 'file', path: '/etc/long.conf', before: null, after: Array.from({ length: 60 }, (_, i) => `line ${i + 1}`).join('\n') + '\n', reason: 'a long file' }],
  };
  const decision = store.review(long);
  let frame = await screen.waitForText('more below');
  assert.match(frame, /\+line 1$/m);
  assert.doesNotMatch(frame, /\+line 60$/m);
  await screen.press(KEY.pageDown, KEY.pageDown, KEY.pageDown, KEY.pageDown, KEY.pageDown);
  frame = await screen.waitForText(/\+line 60$/m);
  assert.doesNotMatch(frame, /\+line 1$/m);
  await screen.press('s');
  assert.equal(await decision, 'skip');
  screen.unmount();
});

test('lockout risk: no single key applies; the node name must be typed', async () => {
  const { store, screen } = mount();
  startStep(store, 2);
  let settled: Review | undefined;
  const decision = store.review(LOCKOUT_PLAN).then((r) => (settled = r));
  let frame = await screen.waitForText('This change can lock you out.');
  assert.match(frame, /Type pve1 to apply, or skip or stop\./);
  assert.match(frame, /\[LOCKOUT RISK\]/);
  // Enter, y, a, s and q on their own do nothing but type.
  await screen.press(KEY.enter, 'y', KEY.enter);
  frame = await screen.waitForText('"y" is not pve1; nothing was changed');
  assert.equal(settled, undefined);
  await screen.press('p', 'v', 'e', '2', KEY.backspace, '1');
  await screen.waitForText(/❯ pve1/);
  assert.equal(settled, undefined);
  await screen.press(KEY.enter);
  assert.equal(await decision, 'apply');
  screen.unmount();
});

test('lockout risk: typing stop stops', async () => {
  const { store, screen } = mount();
  startStep(store, 2);
  const decision = store.review(LOCKOUT_PLAN);
  await screen.waitForText('This change can lock you out.');
  await screen.press('s', 't', 'o', 'p', KEY.enter);
  assert.equal(await decision, 'stop');
  screen.unmount();
});

test('Ctrl+C while a step runs asks to stop at the step boundary', async () => {
  const store = new WizardStore();
  let stopRequests = 0;
  const { screen } = mount(store, () => store.interrupt(() => {
    stopRequests++;
    store.onEvent({ type: 'stop-requested' });
  }));
  startStep(store, 0);
  store.onEvent({ type: 'step-planned', plan: FILE_PLAN });
  store.onEvent({ type: 'step-applying', stepId: 'sysctl' });
  store.onEvent({ type: 'change-started', stepId: 'sysctl', index: 1, change: FILE_PLAN.changes[1]! });
  store.onEvent({ type: 'output', stepId: 'sysctl', line: 'kernel.kptr_restrict = 2' });
  let frame = await screen.waitForText('Applying 2/2');
  assert.match(frame, /│ kernel\.kptr_restrict = 2/);
  await screen.press(KEY.ctrlC);
  frame = await screen.waitForText('Stopping after this step.');
  assert.equal(stopRequests, 1);
  assert.match(frame, /Press Ctrl\+C again to quit at once/);
  screen.unmount();
});

test('Ctrl+C at a question stops at once', async () => {
  const { store, screen } = mount();
  startStep(store, 1);
  const answer = store.answer({
    stepId: 'admin',
    stepTitle: 'Named admin account',
    question: { id: 'name', kind: 'text', prompt: 'Name of the admin account' },
    defaultValue: 'alice',
  });
  await screen.waitForText('Name of the admin account (alice)');
  const outcome = answer.then(
    () => 'answered',
    (error: Error) => error.name,
  );
  await screen.press(KEY.ctrlC);
  assert.equal(await outcome, 'OperatorStop');
  screen.unmount();
});

test('finished steps move into the scrollback with their checks', async () => {
  const { store, screen } = mount();
  startStep(store, 0);
  store.onEvent({ type: 'step-planned', plan: FILE_PLAN });
  store.onEvent({
    type: 'step-finished',
    stepId: 'sysctl',
    outcome: 'verified',
    checks: [
      { label: 'kernel.kptr_restrict = 2', ok: true },
      { label: 'kernel.dmesg_restrict = 1', ok: true },
    ],
  });
  store.onEvent({ type: 'run-finished', results: [{ stepId: 'sysctl', title: 'Kernel and network sysctl settings', outcome: 'verified', changes: 2 }], stopped: false });
  const frame = await screen.waitForText('Finished: 1 verified.');
  assert.match(frame, /✔ Kernel and network sysctl settings: verified \(2 changes\)/);
  assert.match(frame, /✔ kernel\.kptr_restrict = 2/);
  assert.match(frame, /Journal \/var\/lib\/pve-baseline\/journal\.json/);
  screen.unmount();
});
