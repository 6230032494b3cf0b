import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanup } from 'ink-testing-library';
import { App } from '../../screens/App.tsx';
import { WizardStore } from '../../screens/state/wizard-store.ts';
import { pickGlyphs, CONSOLE, UNICODE } from '../../screens/glyphs.ts';
import { textInputReducer } from '../../screens/hooks/use-text-input.ts';
import { Secret } from '../../src/system/secret.ts';
import type { StepInfo } from '../../src/engine/events.ts';
import { fakeNode, KEY, renderScreen } from './helpers.tsx';

afterEach(() => cleanup());

const STEPS: StepInfo[] = [
  { id: 'sysctl', title: 'Kernel and network sysctl settings', summary: 'Hides kernel addresses.', risk: 'safe', scope: 'node', journaled: 'verified' },
  { id: 'admin', title: 'Named admin account', summary: 'Stop using root for daily work.', risk: 'safe', scope: 'node', journaled: 'applying' },
  { id: 'sshd', title: 'sshd hardening', summary: 'Keys only.', risk: 'lockout', scope: 'node', journaled: 'pending' },
];

function mount(env: NodeJS.ProcessEnv) {
  const store = new WizardStore();
  const screen = renderScreen(
    <App store={store} node={fakeNode()} version="0.1.0" notes={[]} journalPath="/j" backupsPath="/b" onInterrupt={() => store.interrupt(() => undefined)} />,
    env,
  );
  return { store, screen };
}

/**
 * Characters the Linux console font draws: ASCII, the box-drawing block, and
 * the middle dot (Lat15 fonts cover ISO 8859-15, which has U+00B7).
 */
const CONSOLE_SAFE = /^[\u0020-\u007e\n\u00b7\u2500-\u257f]*$/;

test('TERM=linux picks the console glyph set, xterm the Unicode one', () => {
  assert.equal(pickGlyphs({ TERM: 'linux', LANG: 'en_US.UTF-8' }), CONSOLE);
  assert.equal(pickGlyphs({ TERM: 'xterm-256color', LANG: 'en_US.UTF-8' }), UNICODE);
  assert.equal(pickGlyphs({ TERM: 'xterm-256color', LANG: 'POSIX' }), CONSOLE);
  for (const glyph of [...Object.values(CONSOLE).flat()]) assert.match(String(glyph), CONSOLE_SAFE);
});

test('under TERM=linux every screen draws only console-safe characters', async () => {
  const { store, screen } = mount({ TERM: 'linux', LANG: 'en_US.UTF-8', NO_COLOR: '1' });
  store.onEvent({ type: 'run-started', steps: STEPS, resumeAt: { stepId: 'admin', index: 1 } });
  void store.waitForStart();
  let frame = await screen.waitForText('resuming at step 2');
  assert.match(frame, /> +2 Named admin account/);
  assert.match(frame, /\+ +1 Kernel and network sysctl settings +done before/);
  assert.match(frame, /! +2 Named admin account|interrupted/);
  assert.match(frame, CONSOLE_SAFE, `non-console glyph in:\n${frame}`);
  assert.match(frame, /up\/down browse/);

  await screen.press(KEY.enter);
  store.onEvent({ type: 'step-started', stepId: 'sshd', index: 2 });
  void store.review({ stepId: 'sshd', title: 'sshd hardening', risk: 'lockout', changes: [{ kind: 'service', unit: 'ssh.service', action: 'reload', reason: 'new settings' }] });
  frame = await screen.waitForText('This change can lock you out.');
  assert.match(frame, /! This change can lock you out\./);
  assert.match(frame, CONSOLE_SAFE, `non-console glyph in:\n${frame}`);
  await screen.press('s', 'k', 'i', 'p', KEY.enter);
  store.onEvent({ type: 'step-started', stepId: 'sysctl', index: 0 });
  store.onEvent({ type: 'step-applying', stepId: 'sysctl' });
  frame = await screen.waitForText('Applying');
  assert.match(frame, /^[-\\|/] Applying/m);
  assert.match(frame, CONSOLE_SAFE, `non-console glyph in:\n${frame}`);
});

test('the Unicode set is used on a normal terminal', async () => {
  const { store, screen } = mount({ TERM: 'xterm-256color', LANG: 'C.UTF-8', NO_COLOR: '1' });
  store.onEvent({ type: 'run-started', steps: STEPS });
  void store.waitForStart();
  const frame = await screen.waitForText('enter start');
  assert.match(frame, /❯ +1 Kernel/);
  assert.match(frame, /↑↓ browse/);
});

test('NO_COLOR: no colour escapes; colour otherwise', async () => {
  const { store, screen } = mount({ TERM: 'xterm-256color', LANG: 'C.UTF-8', NO_COLOR: '1' });
  store.onEvent({ type: 'run-started', steps: STEPS });
  void store.waitForStart();
  await screen.waitForText('enter start');
  assert.doesNotMatch(screen.lastFrame() ?? '', /\u001B\[3[0-9]m|\u001B\[9[0-7]m/);
});

test('password prompt: masked, typed twice, a mismatch starts over, a Secret comes back', async () => {
  const { store, screen } = mount({ TERM: 'xterm-256color', LANG: 'C.UTF-8', NO_COLOR: '1' });
  store.onEvent({ type: 'run-started', steps: STEPS });
  store.onEvent({ type: 'step-started', stepId: 'admin', index: 1 });
  const answer = store.answer({
    stepId: 'admin',
    stepTitle: 'Named admin account',
    question: { id: 'password', kind: 'password', prompt: 'Password for sudo', minLength: 8 },
  });
  await screen.waitForText('Password for sudo');
  await screen.press(...'short', KEY.enter);
  await screen.waitForText('must be at least 8 characters long');
  await screen.press(...'correct horse', KEY.enter);
  let frame = await screen.waitForText('Password for sudo (again)');
  await screen.press(...'correct hosre', KEY.enter);
  frame = await screen.waitForText('the two passwords differ');
  await screen.press(...'correct horse', KEY.enter);
  await screen.waitForText('(again)');
  await screen.press(...'correct horse');
  frame = await screen.waitForText('*************');
  // The typed text is never on screen, in any frame.
  for (const f of screen.frames) assert.doesNotMatch(f, /correct|horse|short/);
  await screen.press(KEY.enter);
  const value = await answer;
  assert.ok(value instanceof Secret);
  assert.equal((value as Secret).reveal(), 'correct horse');
  assert.equal(JSON.stringify({ value }), '{"value":"[secret]"}');
  void frame;
});

test('text prompt: Enter on an empty field takes the detected default; backspace edits', async () => {
  const { store, screen } = mount({ TERM: 'xterm-256color', LANG: 'C.UTF-8', NO_COLOR: '1' });
  store.onEvent({ type: 'run-started', steps: STEPS });
  store.onEvent({ type: 'step-started', stepId: 'admin', index: 1 });
  const first = store.answer({ stepId: 'admin', stepTitle: 'Named admin account', question: { id: 'name', kind: 'text', prompt: 'Admin name' }, defaultValue: 'alice' });
  await screen.waitForText('Admin name (alice)');
  await screen.press(KEY.enter);
  assert.equal(await first, 'alice');
  const second = store.answer({ stepId: 'admin', stepTitle: 'Named admin account', question: { id: 'name', kind: 'text', prompt: 'Admin name' }, defaultValue: 'alice', error: 'bob is taken' });
  await screen.waitForText('bob is taken');
  await screen.press('b', 'o', 'x', KEY.backspace, 'b', KEY.enter);
  assert.equal(await second, 'bob');
});

test('text input reducer: insert, backspace by character, clear', () => {
  assert.equal(textInputReducer('ab', { type: 'insert', text: 'c' }), 'abc');
  assert.equal(textInputReducer('añ', { type: 'backspace' }), 'a');
  assert.equal(textInputReducer('', { type: 'backspace' }), '');
  assert.equal(textInputReducer('abc', { type: 'clear' }), '');
});
