/**
 * The access countdown: after a lockout-risk change is live, the wizard shows
 * how long until the node puts it back and how to prove access, and settles
 * the runner's confirmAccess with the proof, the person's choice, or the
 * deadline. Driven through the real store and App.
 */
import { afterEach, test } from 'node:test';
import type { EventEmitter } from 'node:events';
import assert from 'node:assert/strict';
import { cleanup } from 'ink-testing-library';
// Ink colours through chalk, which turns colour off in a test process (no TTY, FORCE_COLOR=0).
import chalk from 'chalk';
import { App } from '../../screens/App.tsx';
import { clockTime } from '../../screens/components/AccessCountdown.tsx';
import { WizardStore } from '../../screens/state/wizard-store.ts';
import { guardTerminal } from '../../src/cli/terminal-guard.ts';
import type { AccessDecision, AccessProof, AccessRequest, StepInfo } from '../../src/engine/events.ts';
import { fakeNode, KEY, renderScreen, waitFor } from './helpers.tsx';

afterEach(() => cleanup());

const STEPS: StepInfo[] = [
  { id: 'sshd', title: 'sshd hardening', summary: 'Keys only, verified from a second session.', risk: 'lockout', scope: 'node', journaled: 'pending' },
];

const INSTRUCTIONS = ['Open a new terminal and: ssh alice@10.77.7.2', 'or, from a new session: pve-baseline confirm'];

const PROOF: AccessProof = { by: 'login', detail: 'alice from 10.77.7.1 (port 50412) with ED25519 key SHA256:abc' };

function mount(env?: NodeJS.ProcessEnv) {
  const store = new WizardStore();
  const interrupts: boolean[] = [];
  const screen = renderScreen(
    <App store={store} node={fakeNode()} version="0.1.0" notes={[]} journalPath="/j" backupsPath="/b" onInterrupt={() => interrupts.push(store.interrupt(() => undefined))} />,
    env,
  );
  store.onEvent({ type: 'run-started', steps: STEPS });
  store.onEvent({ type: 'step-started', stepId: 'sshd', index: 0 });
  store.onEvent({ type: 'step-verifying', stepId: 'sshd' });
  return { store, screen, interrupts };
}

/** A request whose proof the test settles, as the runner's watch or deadline would. */
function accessRequest(overrides: Partial<Omit<AccessRequest, 'proof'>> = {}) {
  let settleProof!: (proof: AccessProof | null) => void;
  const proof = new Promise<AccessProof | null>((resolve) => (settleProof = resolve));
  const request: AccessRequest = {
    stepId: 'sshd',
    title: 'sshd hardening',
    deadline: Date.now() + 176_500, // 176.5 s rounds up to "2:57" unless rendering takes half a second
    instructions: INSTRUCTIONS,
    maySkip: false,
    proof,
    ...overrides,
  };
  return { request, settleProof };
}

/** The decision once settled, or undefined while the countdown still runs. */
function track(decision: Promise<AccessDecision>) {
  const seen: { decision?: AccessDecision; error?: Error } = {};
  decision.then(
    (d) => (seen.decision = d),
    (e: Error) => (seen.error = e),
  );
  return seen;
}

test('the countdown shows the instructions, m:ss and the deadline, and offers only revert over SSH', async () => {
  const { store, screen } = mount();
  const { request } = accessRequest();
  const seen = track(store.confirmAccess(request));
  const frame = await screen.waitForText('Prove you can still log in before the node puts the change back.');
  assert.match(frame, /Step 1 of 1 · sshd hardening \[LOCKOUT RISK\]/);
  assert.match(frame, new RegExp(`Reverts in 2:57 \\(at ${clockTime(request.deadline)}\\)`));
  assert.match(frame, /^ {2}● Open a new terminal and: ssh alice@10\.77\.7\.2$/m);
  assert.match(frame, /^ {2}● or, from a new session: pve-baseline confirm$/m);
  assert.match(frame, /Waiting for the login…/);
  assert.match(frame, /^r revert now$/m);
  assert.doesNotMatch(frame, /keep without a second login/);
  const countdown = frame.slice(frame.indexOf('Prove you can'));
  assert.ok(countdown.split('\n').length <= 8, `the countdown fits in 8 rows:\n${countdown}`);

  // k is not offered over SSH, and other keys do nothing.
  await screen.press('k', 'y', KEY.enter, ' ');
  assert.equal(seen.decision, undefined);
  assert.equal(store.getState().pending?.kind, 'access');
  assert.match(screen.frame(), /Prove you can still log in/);
  await screen.press('r');
  await waitFor(() => seen.decision !== undefined, 'the decision');
  screen.unmount();
});

/** Ink's output with colour on, as on a real terminal. */
function withColour(t: { after: (fn: () => void) => void }): void {
  const level = chalk.level;
  chalk.level = 1;
  t.after(() => (chalk.level = level));
}

const YELLOW = '\u001B[33m';

test('the countdown ticks each second and turns warn-coloured under 30 s', async (t) => {
  withColour(t);
  const { store, screen } = mount({ TERM: 'xterm-256color', LANG: 'C.UTF-8' });
  void store.confirmAccess(accessRequest({ deadline: Date.now() + 3_500 }).request);
  await screen.waitForText('Reverts in 0:04');
  await screen.waitForText('Reverts in 0:03');
  const line = (screen.lastFrame() ?? '').split('\n').find((l) => l.includes('0:03'))!;
  assert.ok(line.includes(`${YELLOW}0:03`) || line.includes(`${YELLOW}\u001B[1m0:03`), `yellow countdown in ${JSON.stringify(line)}`);
  screen.unmount();
});

test('a 2:57 countdown is not warn-coloured', async (t) => {
  withColour(t);
  const { store, screen } = mount({ TERM: 'xterm-256color', LANG: 'C.UTF-8' });
  void store.confirmAccess(accessRequest().request);
  await screen.waitForText('Reverts in 2:57');
  const line = (screen.lastFrame() ?? '').split('\n').find((l) => l.includes('2:57'))!;
  assert.match(line, /\u001B\[1m/, 'colour is on (the countdown is bold)');
  assert.ok(!line.includes(YELLOW), `no yellow in ${JSON.stringify(line)}`);
  screen.unmount();
});

test('a proof settles confirmAccess as proven and clears the countdown', async () => {
  const { store, screen } = mount();
  const { request, settleProof } = accessRequest();
  const decision = store.confirmAccess(request);
  await screen.waitForText('Reverts in 2:57');
  settleProof(PROOF);
  assert.deepEqual(await decision, { kind: 'proven', proof: PROOF });
  const frame = await screen.waitForText('Finishing the step');
  assert.doesNotMatch(frame, /Reverts in/);
  assert.equal(store.getState().pending, undefined);
  screen.unmount();
});

test('r reverts now; a proof arriving afterwards changes nothing and leaves the next prompt alone', async () => {
  const { store, screen } = mount();
  const { request, settleProof } = accessRequest();
  const decision = store.confirmAccess(request);
  await screen.waitForText('r revert now');
  await screen.press('r');
  assert.deepEqual(await decision, { kind: 'revert', reason: 'reverted by the operator before access was confirmed' });

  // The runner has gone on to a later prompt when the late proof lands.
  void store.review({ stepId: 'sshd', title: 'sshd hardening', risk: 'safe', changes: [{ kind: 'command', argv: ['true'], reason: 'x' }] });
  settleProof(PROOF);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(store.getState().pending?.kind, 'review');
  assert.deepEqual(await decision, { kind: 'revert', reason: 'reverted by the operator before access was confirmed' });
  screen.unmount();
});

test('on the console, k keeps the change without a second login', async () => {
  const { store, screen } = mount();
  const { request } = accessRequest({ maySkip: true });
  const decision = store.confirmAccess(request);
  const frame = await screen.waitForText('k keep without a second login (console)');
  assert.match(frame, /^r revert now · k keep without a second login \(console\)$/m);
  await screen.press('k');
  assert.deepEqual(await decision, { kind: 'skipped' });
  screen.unmount();
});

test('the deadline (proof null) reverts with the reason the node put it back', async () => {
  const { store, screen } = mount();
  const { request, settleProof } = accessRequest();
  const decision = store.confirmAccess(request);
  await screen.waitForText('Reverts in');
  settleProof(null);
  assert.deepEqual(await decision, { kind: 'revert', reason: 'no new login before the deadline: the node put the change back' });
  await screen.waitForText('Finishing the step');
  screen.unmount();
});

test('Ctrl+C during the countdown stops at once with OperatorStop', async () => {
  const { store, screen, interrupts } = mount();
  const { request, settleProof } = accessRequest();
  const seen = track(store.confirmAccess(request));
  await screen.waitForText('Reverts in');
  await screen.press(KEY.ctrlC);
  await waitFor(() => seen.error !== undefined, 'the rejection');
  assert.equal(seen.error!.name, 'OperatorStop');
  assert.deepEqual(interrupts, [true], 'the stop is immediate');
  assert.equal(store.getState().pending, undefined);
  // A proof after the stop does not turn it into a decision.
  settleProof(PROOF);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(seen.decision, undefined);
  screen.unmount();
});

test('under TERM=linux the countdown draws only console-safe characters', async () => {
  const { store, screen } = mount({ TERM: 'linux', LANG: 'en_US.UTF-8', NO_COLOR: '1' });
  void store.confirmAccess(accessRequest({ maySkip: true }).request);
  // The step header above is the StepScreen's; this checks the countdown's own lines.
  const full = await screen.waitForText('Waiting for the login...');
  const frame = full.slice(full.indexOf('Prove you can'));
  assert.match(frame, /^Reverts in 2:57 \(at \d\d:\d\d:\d\d\)$/m);
  assert.match(frame, /^ {2}\* Open a new terminal and: ssh alice@10\.77\.7\.2$/m);
  assert.match(frame, /^[\u0020-\u007e\n\u00b7\u2500-\u257f]*$/, `non-console glyph in:\n${frame}`);
  screen.unmount();
});

/** Let React and Ink finish what a timer started: a few macrotask turns, no timers (they are simulated). */
async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Listeners per event name on each emitter, to compare before and after. */
function listenerCounts(emitters: Record<string, EventEmitter>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [name, emitter] of Object.entries(emitters)) {
    for (const event of emitter.eventNames()) counts[`${name}:${String(event)}`] = emitter.listenerCount(event);
  }
  return counts;
}

test('held for 60 simulated seconds, the countdown is redrawn in place; a warning meanwhile never enters the frame and no listener leaks', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: Date.parse('2026-01-01T12:00:00Z') });
  const { store, screen } = mount();
  // One terminal: what goes to stderr lands among Ink's frames, as on a real tty.
  Object.defineProperty(process.stderr, 'write', {
    value: (chunk: unknown) => {
      screen.frames.push(String(chunk));
      return true;
    },
    writable: true,
    configurable: true,
  });
  t.after(() => delete (process.stderr as { write?: unknown }).write);
  const logged: string[] = [];
  const releaseTerminal = guardTerminal({ log: (_source, text) => logged.push(text) });
  t.after(() => releaseTerminal());

  void store.confirmAccess(accessRequest({ deadline: Date.now() + 176_500 }).request);
  await settle();
  const first = screen.frames.length - 1;
  assert.match(screen.frame(), /Reverts in 2:57/);
  const height = screen.frames[first]!.split('\n').length;

  t.mock.timers.tick(1000);
  await settle();
  assert.match(screen.frame(), /Reverts in 2:56/);
  const emitters = { stdin: screen.stdin, stdout: screen.stdout, process };
  const listenersAtStart = listenerCounts(emitters);
  for (let second = 2; second <= 60; second++) {
    if (second === 5) {
      // What the leaking poll made Node print: a warning about 11 abort listeners.
      const leaking = new AbortController();
      for (let i = 0; i < 11; i++) leaking.signal.addEventListener('abort', () => undefined);
    }
    t.mock.timers.tick(1000);
    await settle();
  }
  assert.match(screen.frame(), /Reverts in 1:57/);

  const frames = screen.frames.slice(first);
  assert.ok(frames.length >= 60, `a frame at least each second (${frames.length})`);
  for (const [i, frame] of frames.entries()) {
    const text = frame.replace(/\u001B\[[0-9;?]*[A-Za-z]/g, '');
    assert.equal(text.match(/Reverts in \d+:\d\d/g)?.length, 1, `frame ${i} has one countdown line:\n${text}`);
    assert.equal(text.split('\n').length, height, `frame ${i} is as tall as the first:\n${text}`);
  }
  // (The log may also hold the test runner's own warning that mock timers are experimental.)
  assert.ok(logged.some((text) => /^MaxListenersExceededWarning: Possible EventTarget memory leak detected/.test(text)), `the warning went to the log: ${logged.join(' | ')}`);
  assert.deepEqual(listenerCounts(emitters), listenersAtStart, 'no listener was added while the countdown ran');
  screen.unmount();
});
