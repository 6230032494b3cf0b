/** Secrets never persist: not in the journal, not in the backups; they reach only the program's stdin. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { Secret, isSecret } from '../../src/system/secret.ts';
import { describeChange } from '../../src/engine/change.ts';
import { persistableAnswers } from '../../src/engine/step.ts';
import { Journal } from '../../src/engine/journal.ts';
import { passwordStep, ensureFilesStep } from '../fixtures/steps.ts';
import { backupsDir, engine } from '../fixtures/harness.ts';
import { ScriptedOperator } from '../fixtures/operator.ts';
import { RecordingExec } from '../fixtures/exec.ts';
import { allFiles, tempDir } from '../fixtures/temp.ts';

const PASSWORD = 'correct-horse-battery-staple-7Q';

async function assertNowhere(stateDir: string, secret: string) {
  const files = await allFiles(stateDir);
  assert.ok(files.some((f) => f.path.endsWith('journal.json')), 'the journal was written');
  for (const f of files) {
    assert.equal(f.bytes.includes(secret), false, `${f.path} holds the secret`);
  }
}

describe('Secret', () => {
  const s = new Secret('hunter2-hunter2');

  it('renders as [secret] in every conversion', () => {
    assert.equal(String(s), '[secret]');
    assert.equal(`${s}`, '[secret]');
    assert.equal(JSON.stringify(s), '"[secret]"');
    assert.equal(JSON.stringify({ input: s, list: [s] }), '{"input":"[secret]","list":["[secret]"]}');
    assert.equal(util.inspect(s), '[secret]');
    assert.equal(util.inspect({ nested: { s } }, { depth: 5 }), '{ nested: { s: [secret] } }');
    assert.equal(util.format('%s %o %j', s, s, s).includes('hunter2'), false);
    assert.equal(Object.keys(s).length, 0, 'no enumerable field holds the value');
  });

  it('gives the value back only through reveal(), and knows its length', () => {
    assert.equal(s.reveal(), 'hunter2-hunter2');
    assert.equal(s.length, 15);
    assert.equal(isSecret(s), true);
    assert.equal(isSecret('hunter2'), false);
  });

  it('persistableAnswers drops Secrets and password questions, keeps the rest', () => {
    const step = passwordStep({ id: 'pw', file: '/nonexistent' });
    const answers = { user: 'admin', password: 'typed as plain text', token: new Secret('tok'), groups: ['a', 'b'], n: 3, yes: true };
    assert.deepEqual(persistableAnswers(step, answers), { user: 'admin', groups: ['a', 'b'], n: 3, yes: true });
  });

  it('a command change with input is described without it', () => {
    assert.equal(
      describeChange({ kind: 'command', argv: ['chpasswd'], input: new Secret('admin:pw'), reason: '' }),
      'run chpasswd (with input on stdin)',
    );
  });
});

describe('secrets through the runner', () => {
  it('a password answer reaches the command stdin and nowhere in the state directory', async (t) => {
    const dir = await tempDir(t);
    const stateDir = path.join(dir, 'state');
    const out = path.join(dir, 'etc', 'shadow-input');
    await fs.mkdir(path.dirname(out), { recursive: true });
    const step = passwordStep({ id: 'pw', file: out });
    const operator = new ScriptedOperator({ 'pw.user': 'admin', 'pw.password': PASSWORD });
    const exec = new RecordingExec();
    const { runner, journal, events } = engine({ stateDir, steps: [step], operator, exec });

    const [result] = await runner.run();

    assert.equal(result!.outcome, 'verified');
    assert.equal(await fs.readFile(out, 'utf8'), `admin:${PASSWORD}\n`, 'the secret reached tee on stdin');
    assert.deepEqual(exec.argvs, [['tee', out]]);
    assert.ok(isSecret(exec.calls[0]!.input), 'handed to Exec as a Secret, revealed only there');
    assert.equal(operator.asked.find((r) => r.question.id === 'password')!.defaultValue, undefined);
    assert.deepEqual(journal.step('pw')!.answers, { user: 'admin' });
    assert.deepEqual(journal.step('pw')!.applied, [{ kind: 'command', argv: ['tee', out], undo: ['rm', '-f', out] }]);
    await assertNowhere(stateDir, PASSWORD);
    const planned = events.find((e) => e.type === 'step-planned');
    assert.ok(planned);
    assert.equal(JSON.stringify(planned).includes(PASSWORD), false, 'the plan as shown and journaled carries the marker only');
    assert.ok(JSON.stringify(planned).includes('[secret]'));
  });

  it('a password in an answers file is not journaled either, nor is it remembered for the next run', async (t) => {
    const dir = await tempDir(t);
    const stateDir = path.join(dir, 'state');
    const out = path.join(dir, 'out');
    const presetAnswers = { pw: { user: 'ops', password: PASSWORD } };
    await engine({ stateDir, steps: [passwordStep({ id: 'pw', file: out })], presetAnswers }).runner.run();
    assert.equal(await fs.readFile(out, 'utf8'), `ops:${PASSWORD}\n`);
    await assertNowhere(stateDir, PASSWORD);

    // The next run re-asks the password (it was never stored) but not the account name.
    await fs.rm(out);
    const operator = new ScriptedOperator({ 'pw.password': 'another-password-1' });
    await engine({ stateDir, steps: [passwordStep({ id: 'pw', file: out })], operator }).runner.run();
    assert.deepEqual(operator.askedKeys, ['pw.password']);
    assert.equal(await fs.readFile(out, 'utf8'), 'ops:another-password-1\n');
  });

  it('a secret in a failed, rolled-back step stays out of the journal and the backups', async (t) => {
    const dir = await tempDir(t);
    const stateDir = path.join(dir, 'state');
    const conf = path.join(dir, 'etc', 'conf');
    await fs.mkdir(path.dirname(conf), { recursive: true });
    await fs.writeFile(conf, 'old\n');
    const stdinCopy = path.join(dir, 'stdin-copy');
    const step = ensureFilesStep({
      id: 'tfa',
      files: [{ path: conf, content: 'new\n' }],
      commands: [{ argv: ['tee', stdinCopy], input: new Secret(`${PASSWORD}\n`), undo: ['rm', '-f', stdinCopy] }],
      extraChecks: () => [{ label: 'token works', ok: false }],
    });
    const { runner, journal } = engine({ stateDir, steps: [step] });
    const [result] = await runner.run();
    assert.equal(result!.outcome, 'failed');
    assert.equal(journal.status('tfa'), 'failed');
    await assert.rejects(fs.stat(stdinCopy), { code: 'ENOENT' }, 'undone');
    await assertNowhere(stateDir, PASSWORD);
    const backups = await allFiles(backupsDir(stateDir));
    assert.deepEqual(
      backups.map((f) => f.bytes.toString()),
      ['old\n'],
      'the backup set holds the original file only',
    );
  });

  it('a journal reopened after a run with a secret holds none of it', async (t) => {
    const dir = await tempDir(t);
    const stateDir = path.join(dir, 'state');
    await engine({
      stateDir,
      steps: [passwordStep({ id: 'pw', file: path.join(dir, 'out') })],
      operator: new ScriptedOperator({ 'pw.user': 'admin', 'pw.password': new Secret(PASSWORD) }),
    }).runner.run();
    const reopened = Journal.open(stateDir, 'boot-2');
    assert.equal(JSON.stringify(reopened.all()).includes(PASSWORD), false);
    assert.equal((await fs.readFile(reopened.path, 'utf8')).includes(PASSWORD), false);
  });
});
