/**
 * The SSH key question as the wizard asks it, with the real question from
 * steps/ssh-key.ts and the real runner: a pasted private key is refused (and
 * not kept on screen); a public key is shown for confirmation with its type,
 * size, fingerprint and comment.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanup } from 'ink-testing-library';
import { App } from '../../screens/App.tsx';
import { WizardStore } from '../../screens/state/wizard-store.ts';
import { Runner } from '../../src/engine/runner.ts';
import type { Step } from '../../src/engine/step.ts';
import { generateKeyPair } from '../../src/ssh/keys.ts';
import { sshKeyStep } from '../../steps/ssh-key.ts';
import { LocalFiles } from '../../src/system/files.ts';
import { engine } from '../fixtures/harness.ts';
import { tempDir } from '../fixtures/temp.ts';
import { fakeNode, KEY, renderScreen } from './helpers.tsx';

afterEach(() => cleanup());

const key = await generateKeyPair('ed25519', { comment: 'alice@laptop' });
const fingerprint = (await import('../../src/ssh/keys.ts')).fingerprintOf(Buffer.from(key.public.split(' ')[1]!, 'base64'));

/** A step that asks only the real keys question and plans one harmless change. */
const keysOnly: Step<{ rootKeys: string | null }> = {
  id: 'ssh-key',
  title: 'Your SSH key for the admin account',
  summary: 'x',
  scope: 'node',
  risk: 'safe',
  questions: [sshKeyStep.questions![0]! as NonNullable<Step<{ rootKeys: string | null }>['questions']>[number]],
  async probe() {
    return { rootKeys: null }; // root has no keys of its own: no default offered
  },
  plan: () => [{ kind: 'command', argv: ['true'], reason: 'nothing' }],
  async verify() {
    return [];
  },
};

test('keys: a private key is refused and not kept; a public key is confirmed with type, size, fingerprint and comment', async (t) => {
  const dir = await tempDir(t);
  const store = new WizardStore();
  const { journal, backups } = engine({ stateDir: dir, steps: [keysOnly] });
  const runner = new Runner({
    steps: [keysOnly],
    journal,
    backups,
    operator: store,
    onEvent: store.onEvent,
    ctx: { exec: { run: async () => ({ argv: [], exitCode: 0, stdout: '', stderr: '' }) }, files: new LocalFiles(), node: fakeNode() },
  });
  const screen = renderScreen(
    <App store={store} node={fakeNode()} version="0.1.0" notes={[]} journalPath="/j" backupsPath="/b" onInterrupt={() => undefined} />,
  );
  const run = runner.run();

  await screen.waitForText('Your public key(s)');
  assert.match(screen.frame(), /paste one or more lines; Enter on its own when done/);
  await screen.press(key.private, KEY.enter); // a paste (it ends with a line break), then Enter
  let frame = await screen.waitForText('PRIVATE key. It was not stored or sent anywhere');
  assert.doesNotMatch(frame, /BEGIN OPENSSH PRIVATE KEY|PRIVATE KEY-----/, 'the pasted private key is gone from the screen');

  await screen.press(key.public, KEY.enter);
  frame = await screen.waitForText('This key will let you log in as the admin:');
  assert.match(frame, /Type\s+ssh-ed25519/);
  assert.match(frame, /Size\s+256 bits/);
  assert.match(frame, new RegExp(`Fingerprint\\s+${fingerprint.replace(/[+/]/g, (c) => `\\${c}`)}`));
  assert.match(frame, /Comment\s+alice@laptop/);
  assert.match(frame, /y yes, use this · n no, answer again/);

  // No: asked again; then yes.
  await screen.press('n');
  await screen.waitForText('Your public key(s)');
  await screen.press(key.public, KEY.enter);
  await screen.waitForText('This key will let you log in as the admin:');
  await screen.press('y');
  await screen.waitForText('Plan: 1 command to run.');
  await screen.press('s');
  const [result] = await run;
  assert.equal(result!.outcome, 'skipped');
  assert.equal(journal.step('ssh-key')!.answers.keys, key.public.trim(), 'the public key is what is remembered');
  assert.doesNotMatch(JSON.stringify(journal.all()), /PRIVATE/);
});
