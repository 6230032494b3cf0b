/**
 * An interruption in every phase resumes correctly. "Interrupted" means the
 * run stops for good at that point (a never-settling promise: nothing after it
 * runs, as when SIGHUP kills the process), then a new engine is built on the
 * same state directory, as the next start of the wizard would.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { rollbackApplied } from '../../src/engine/apply.ts';
import { Journal } from '../../src/engine/journal.ts';
import { sha256 } from '../../src/system/files.ts';
import { ensureFilesStep, markerStep } from '../fixtures/steps.ts';
import { backupsDir, engine } from '../fixtures/harness.ts';
import { HaltingFiles } from '../fixtures/files.ts';
import { ScriptedOperator } from '../fixtures/operator.ts';
import { RecordingExec } from '../fixtures/exec.ts';
import { deferred, modeOf, never, tempDir } from '../fixtures/temp.ts';

async function setup(t: { after(fn: () => unknown): void }) {
  const dir = await tempDir(t);
  const etc = path.join(dir, 'etc');
  await fs.mkdir(etc, { recursive: true });
  return { dir, stateDir: path.join(dir, 'state'), etc };
}

describe('resume after an interruption', () => {
  it('(a) before apply: remembered answers are not asked again, and the step applies', async (t) => {
    const { stateDir, etc } = await setup(t);
    const conf = path.join(etc, 'motd');
    const make = () =>
      ensureFilesStep({
        id: 'motd',
        title: 'Message of the day',
        files: [{ path: conf, content: (a) => `${String(a.greeting)}${a.loud ? '!' : ''}\n` }],
        questions: [
          { kind: 'text', id: 'greeting', prompt: 'Greeting', detect: () => 'detected-default' },
          { kind: 'confirm', id: 'loud', prompt: 'Loud?', detect: () => false },
        ],
      });

    // First run: answers given, then the process dies while the plan is on screen.
    const atReview = deferred();
    const first = new ScriptedOperator({ 'motd.greeting': 'welcome', 'motd.loud': true }, () => {
      atReview.resolve();
      return never();
    });
    void engine({ stateDir, steps: [make()], operator: first }).runner.run();
    await atReview.promise;
    const journal = Journal.open(stateDir, 'boot-1');
    assert.equal(journal.status('motd'), 'pending');
    assert.deepEqual(journal.step('motd')!.answers, { greeting: 'welcome', loud: true });
    await assert.rejects(fs.stat(conf), { code: 'ENOENT' });

    // Second run: the operator has no answers to give; being asked would throw.
    const second = new ScriptedOperator();
    const run2 = engine({ stateDir, steps: [make()], operator: second });
    assert.deepEqual(run2.runner.resumePoint(), { stepId: 'motd', index: 0 });
    const [result] = await run2.runner.run();

    assert.deepEqual(second.asked, [], 'remembered answers are not asked again');
    assert.equal(second.reviewed.length, 1, 'the plan is still shown before it is applied');
    assert.equal(result!.outcome, 'verified');
    assert.equal(await fs.readFile(conf, 'utf8'), 'welcome!\n');
    assert.equal(run2.journal.status('motd'), 'verified');
  });

  it('(a) a remembered answer that no longer validates is asked again, with the detected default', async (t) => {
    const { stateDir, etc } = await setup(t);
    Journal.open(stateDir, 'boot-1').setAnswers('x', { mode: 'gone-choice' });
    const step = ensureFilesStep({
      id: 'x',
      files: [{ path: path.join(etc, 'x'), content: (a) => `${String(a.mode)}\n` }],
      questions: [{ kind: 'select', id: 'mode', prompt: 'Mode', choices: [{ value: 'strict', label: 'Strict' }], detect: () => 'strict' }],
    });
    const operator = new ScriptedOperator({ 'x.mode': 'strict' });
    await engine({ stateDir, steps: [step], operator }).runner.run();
    assert.deepEqual(
      operator.asked.map((r) => [r.question.id, r.defaultValue]),
      [['mode', 'strict']],
    );
  });

  it('(b) during apply: continues under the same apply id, keeps the original backup, ends verified, and rolls back to the original bytes', async (t) => {
    const { stateDir, etc } = await setup(t);
    const first = path.join(etc, 'first.conf');
    const second = path.join(etc, 'second.conf');
    const original = Buffer.from('# shipped by the distribution\nPermitRootLogin yes\n');
    await fs.writeFile(first, original, { mode: 0o640 });
    await fs.chmod(first, 0o640);
    await fs.chown(first, 1234, 5678);
    // The two files are written together, so the resumed plan covers the first file again.
    const make = () =>
      ensureFilesStep({
        id: 'sshd',
        together: true,
        files: [
          { path: first, content: 'PermitRootLogin prohibit-password\n' },
          { path: second, content: 'PasswordAuthentication no\n', mode: 0o600 },
        ],
      });

    // First run: killed during the second write, after the first file was written.
    const halting = new HaltingFiles(2);
    void engine({ stateDir, steps: [make()], files: halting }).runner.run();
    assert.equal(await halting.halted, second);
    const seen = Journal.open(stateDir, 'boot-1').step('sshd')!;
    assert.equal(seen.status, 'applying');
    assert.ok(seen.applyId);
    assert.deepEqual(
      seen.applied.map((a) => a.kind === 'file' && a.path),
      [first, second],
      'both backups were recorded before their writes',
    );
    assert.equal(await fs.readFile(first, 'utf8'), 'PermitRootLogin prohibit-password\n', 'the first file was changed');
    await assert.rejects(fs.stat(second), { code: 'ENOENT' });

    // Second run, after the reboot: a new engine with working files.
    const run2 = engine({ stateDir, steps: [make()], bootId: 'boot-2' });
    assert.deepEqual(run2.runner.resumePoint(), { stepId: 'sshd', index: 0 });
    const [result] = await run2.runner.run();

    assert.equal(result!.outcome, 'verified');
    const record = run2.journal.step('sshd')!;
    assert.equal(record.status, 'verified');
    assert.equal(record.applyId, seen.applyId, 'same apply id');
    assert.ok(record.history.some((h) => h.status === 'applying' && h.note === 'resumed after an interruption' && h.bootId === 'boot-2'));
    const firstBackup = record.applied.find((a) => a.kind === 'file' && a.path === first);
    assert.ok(firstBackup && firstBackup.kind === 'file', 'the first file is still recorded as changed');
    assert.equal(record.applied.filter((a) => a.kind === 'file' && a.path === first).length, 1);
    assert.equal(firstBackup.backup.sha256, sha256(original), 'the backup is of the original, not of the half-applied file');
    assert.deepEqual(await fs.readFile(firstBackup.backup.copy!), original);
    assert.ok(firstBackup.backup.copy!.startsWith(path.join(backupsDir(stateDir), seen.applyId!)));
    assert.equal(await fs.readFile(second, 'utf8'), 'PasswordAuthentication no\n');

    // Undo afterwards: the original bytes, mode and owner come back; the new file goes.
    const problems = await rollbackApplied(record.applied, { exec: new RecordingExec(), backups: run2.backups, onLine: () => {} });
    assert.deepEqual(problems, []);
    assert.deepEqual(await fs.readFile(first), original);
    const st = await fs.stat(first);
    assert.equal(modeOf(st), 0o640);
    assert.deepEqual([st.uid, st.gid], [1234, 5678]);
    await assert.rejects(fs.stat(second), { code: 'ENOENT' });
  });

  it('(b) during apply, when the re-probe plans only what is left: the earlier file stays recorded for rollback', async (t) => {
    const { stateDir, etc } = await setup(t);
    const first = path.join(etc, 'first.conf');
    const second = path.join(etc, 'second.conf');
    await fs.writeFile(first, 'old first\n');
    await fs.writeFile(second, 'old second\n');
    const make = () =>
      ensureFilesStep({
        id: 'pair',
        files: [
          { path: first, content: 'new first\n' },
          { path: second, content: 'new second\n' },
        ],
      });
    const halting = new HaltingFiles(2);
    void engine({ stateDir, steps: [make()], files: halting }).runner.run();
    await halting.halted;
    const applyId = Journal.open(stateDir, 'boot-1').step('pair')!.applyId;

    const operator = new ScriptedOperator();
    const run2 = engine({ stateDir, steps: [make()], operator });
    const [result] = await run2.runner.run();
    assert.equal(result!.outcome, 'verified');
    assert.deepEqual(
      operator.reviewed[0]!.changes.map((c) => c.kind === 'file' && c.path),
      [second],
      'only what is left is planned',
    );
    const record = run2.journal.step('pair')!;
    assert.equal(record.applyId, applyId);
    assert.deepEqual(
      record.applied.map((a) => a.kind === 'file' && a.path),
      [first, second],
    );

    assert.deepEqual(await rollbackApplied(record.applied, { exec: new RecordingExec(), backups: run2.backups, onLine: () => {} }), []);
    assert.equal(await fs.readFile(first, 'utf8'), 'old first\n');
    assert.equal(await fs.readFile(second, 'utf8'), 'old second\n');
  });

  it('(c) after apply, before verify: the re-run re-probes, plans nothing, verifies, and ends verified without applying again', async (t) => {
    const { dir, stateDir, etc } = await setup(t);
    const conf = path.join(etc, 'jail.local');
    const marker = path.join(dir, 'marker');
    let hangVerify = true;
    const atVerify = deferred();
    const make = () =>
      ensureFilesStep({
        id: 'f2b',
        files: [{ path: conf, content: '[sshd]\nenabled = true\n' }],
        extraChecks: () => {
          if (!hangVerify) return [{ label: 'jail is running', ok: true }];
          atVerify.resolve();
          return never();
        },
      });
    const steps1 = [make(), markerStep({ id: 'after', marker, dependsOn: ['f2b'] })];
    void engine({ stateDir, steps: steps1 }).runner.run();
    await atVerify.promise;
    assert.equal(Journal.open(stateDir, 'boot-1').status('f2b'), 'applied');
    const written = await fs.stat(conf);

    hangVerify = false;
    const step = make();
    const operator = new ScriptedOperator();
    const run2 = engine({ stateDir, steps: [step, markerStep({ id: 'after', marker, dependsOn: ['f2b'] })], operator });
    assert.deepEqual(run2.runner.resumePoint(), { stepId: 'f2b', index: 0 });
    const results = await run2.runner.run();
    const started = run2.events.filter((e) => e.type === 'step-started');

    assert.equal(step.calls.probe, 1, 're-probed');
    assert.equal(step.calls.verify, 1, 'verified');
    assert.deepEqual(
      results.map((r) => [r.stepId, r.outcome]),
      [
        ['f2b', 'compliant'],
        ['after', 'verified'],
      ],
    );
    assert.equal(run2.journal.status('f2b'), 'verified');
    assert.deepEqual(
      run2.events.filter((e) => e.type === 'step-planned').map((e) => e.type === 'step-planned' && e.plan.stepId),
      ['after'],
      'nothing planned for the interrupted step',
    );
    assert.ok(!run2.events.some((e) => e.type === 'step-applying' && e.stepId === 'f2b'));
    assert.deepEqual(started[0], { type: 'step-started', stepId: 'f2b', index: 0, previously: 'applied' });
    assert.equal((await fs.stat(conf)).ino, written.ino, 'not written again');
  });

  it('resumePoint names the first step the journal does not hold as verified', async (t) => {
    const { stateDir } = await setup(t);
    const steps = ['a', 'b', 'c'].map((id) => markerStep({ id, marker: path.join(stateDir, id) }));
    assert.equal(engine({ stateDir, steps }).runner.resumePoint(), undefined, 'nothing journaled: a first run');

    const journal = Journal.open(stateDir, 'boot-1');
    journal.setStatus('a', 'verified');
    journal.setStatus('b', 'applying', { applyId: 'id-b' });
    const { runner } = engine({ stateDir, steps });
    assert.deepEqual(runner.resumePoint(), { stepId: 'b', index: 1 });
    assert.deepEqual(
      runner.stepInfos().map((s) => [s.id, s.journaled]),
      [
        ['a', 'verified'],
        ['b', 'applying'],
        ['c', 'pending'],
      ],
    );

    journal.setStatus('b', 'verified');
    journal.setStatus('c', 'failed', { error: 'x' });
    assert.deepEqual(engine({ stateDir, steps }).runner.resumePoint(), { stepId: 'c', index: 2 });
    journal.setStatus('c', 'verified');
    assert.equal(engine({ stateDir, steps }).runner.resumePoint(), undefined, 'everything verified');

    journal.setStatus('b', 'applying', { applyId: 'id-b2' });
    const again = engine({ stateDir, steps, operator: new ScriptedOperator() });
    await again.runner.run();
    const runStarted = again.events[0];
    assert.ok(runStarted?.type === 'run-started');
    assert.deepEqual(runStarted.resumeAt, { stepId: 'b', index: 1 });
  });
});
