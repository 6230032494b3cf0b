import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { AnswerError } from '../../src/engine/runner.ts';
import type { Review } from '../../src/engine/events.ts';
import type { Step } from '../../src/engine/step.ts';
import { ensureFilesStep, markerStep, type FilesFacts } from '../fixtures/steps.ts';
import { engine, eventTypes, stepOf } from '../fixtures/harness.ts';
import { Attempts, ScriptedOperator } from '../fixtures/operator.ts';
import { RecordingExec } from '../fixtures/exec.ts';
import { modeOf, tempDir } from '../fixtures/temp.ts';

async function setup(t: { after(fn: () => unknown): void }) {
  const dir = await tempDir(t);
  return { dir, stateDir: path.join(dir, 'state'), etc: path.join(dir, 'etc') };
}

describe('Runner: a first run', () => {
  it('probes, plans, asks for review, applies, verifies and journals each step', async (t) => {
    const { dir, stateDir, etc } = await setup(t);
    const conf = path.join(etc, 'ssh', 'sshd_config.d', '00-baseline.conf');
    const marker = path.join(dir, 'marker');
    const files = ensureFilesStep({ id: 'sshd', title: 'SSH hardening', files: [{ path: conf, content: 'PasswordAuthentication no\n', mode: 0o600 }] });
    const mark = markerStep({ id: 'mark', marker, dependsOn: ['sshd'] });
    const operator = new ScriptedOperator();
    const { runner, journal, exec, events } = engine({ stateDir, steps: [files, mark], operator });

    const results = await runner.run();

    assert.deepEqual(
      results.map((r) => [r.stepId, r.outcome, r.changes]),
      [
        ['sshd', 'verified', 1],
        ['mark', 'verified', 1],
      ],
    );
    assert.equal(await fs.readFile(conf, 'utf8'), 'PasswordAuthentication no\n');
    assert.equal(modeOf(await fs.stat(conf)), 0o600);
    await fs.access(marker);
    assert.deepEqual((exec as RecordingExec).argvs, [['touch', marker]]);
    assert.deepEqual(
      operator.reviewed.map((p) => [p.stepId, p.changes.map((c) => c.kind)]),
      [
        ['sshd', ['file']],
        ['mark', ['command']],
      ],
    );
    assert.equal(journal.status('sshd'), 'verified');
    assert.equal(journal.status('mark'), 'verified');
    assert.deepEqual(
      journal.step('sshd')!.history.map((h) => h.status),
      ['applying', 'applied', 'verified'],
    );
    assert.deepEqual(eventTypes(events.filter((e) => stepOf(e) === undefined || stepOf(e) === 'sshd')), [
      'run-started',
      'step-started',
      'step-planned',
      'step-applying',
      'change-started',
      'change-finished',
      'step-verifying',
      'step-finished',
      'run-finished',
    ]);
    const started = events[0];
    assert.equal(started?.type, 'run-started');
    assert.ok(started?.type === 'run-started' && started.resumeAt === undefined, 'a first run does not resume');
  });

  it('a second run of a compliant step plans nothing, asks nothing and applies nothing', async (t) => {
    const { dir, stateDir, etc } = await setup(t);
    const conf = path.join(etc, 'motd');
    const marker = path.join(dir, 'marker');
    const make = () => [
      ensureFilesStep({
        id: 'motd',
        files: [{ path: conf, content: (a) => `${String(a.greeting)}\n` }],
        questions: [{ kind: 'text', id: 'greeting', prompt: 'Greeting' }],
      }),
      markerStep({ id: 'mark', marker }),
    ];
    await engine({ stateDir, steps: make(), operator: new ScriptedOperator({ 'motd.greeting': 'hello' }) }).runner.run();
    const before = await fs.stat(conf);

    const again = engine({ stateDir, steps: make(), operator: new ScriptedOperator() });
    const results = await again.runner.run();

    assert.deepEqual(
      results.map((r) => [r.stepId, r.outcome, r.changes]),
      [
        ['motd', 'compliant', 0],
        ['mark', 'compliant', 0],
      ],
    );
    assert.ok(results.every((r) => r.checks?.every((c) => c.ok)));
    assert.equal(again.events.filter((e) => e.type === 'step-planned').length, 0);
    assert.equal(again.events.filter((e) => e.type === 'step-applying').length, 0);
    assert.equal((again.operator as ScriptedOperator).reviewed.length, 0);
    assert.equal((again.operator as ScriptedOperator).asked.length, 0);
    assert.deepEqual((again.exec as RecordingExec).calls, []);
    const after = await fs.stat(conf);
    assert.equal(after.ino, before.ino, 'the file was not rewritten');
    assert.equal(after.mtimeMs, before.mtimeMs);
  });

  it('marks an already compliant step verified on a first run, with the note "compliant"', async (t) => {
    const { stateDir, etc } = await setup(t);
    const conf = path.join(etc, 'x.conf');
    await fs.mkdir(etc, { recursive: true });
    await fs.writeFile(conf, 'ok\n');
    const { runner, journal } = engine({ stateDir, steps: [ensureFilesStep({ id: 'x', files: [{ path: conf, content: 'ok\n' }] })] });
    const [result] = await runner.run();
    assert.equal(result!.outcome, 'compliant');
    assert.equal(journal.status('x'), 'verified');
    assert.equal(journal.step('x')!.history.at(-1)!.note, 'compliant');
    assert.equal(journal.step('x')!.applyId, undefined);
  });

  it('a compliant step whose verify fails is reported failed, not compliant', async (t) => {
    const { stateDir, etc } = await setup(t);
    const conf = path.join(etc, 'x.conf');
    await fs.mkdir(etc, { recursive: true });
    await fs.writeFile(conf, 'ok\n');
    const step = ensureFilesStep({
      id: 'x',
      files: [{ path: conf, content: 'ok\n' }],
      extraChecks: () => [{ label: 'service is active', ok: false, detail: 'inactive (dead)' }],
    });
    const { runner, journal } = engine({ stateDir, steps: [step] });
    const [result] = await runner.run();
    assert.equal(result!.outcome, 'failed');
    assert.equal(result!.reason, 'service is active (inactive (dead))');
    assert.notEqual(journal.status('x'), 'verified');
  });

  it('dry run probes and plans but writes nothing, runs nothing and journals nothing', async (t) => {
    const { dir, stateDir, etc } = await setup(t);
    const conf = path.join(etc, 'x.conf');
    const marker = path.join(dir, 'marker');
    const steps = [
      ensureFilesStep({ id: 'x', files: [{ path: conf, content: 'x\n' }], questions: [{ kind: 'confirm', id: 'go', prompt: 'Go?' }] }),
      markerStep({ id: 'mark', marker }),
    ];
    const operator = new ScriptedOperator({ 'x.go': true });
    const { runner, journal, exec, events } = engine({ stateDir, steps, operator, dryRun: true });
    const results = await runner.run();
    assert.deepEqual(
      results.map((r) => [r.stepId, r.outcome, r.changes]),
      [
        ['x', 'planned', 1],
        ['mark', 'planned', 1],
      ],
    );
    assert.equal(events.filter((e) => e.type === 'step-planned').length, 2);
    assert.equal(operator.reviewed.length, 0);
    assert.deepEqual((exec as RecordingExec).calls, []);
    await assert.rejects(fs.stat(conf), { code: 'ENOENT' });
    await assert.rejects(fs.stat(marker), { code: 'ENOENT' });
    assert.equal(journal.isEmpty, true);
  });

  it('the operator may skip a plan or stop the run before it is applied', async (t) => {
    const { dir, stateDir } = await setup(t);
    const steps = ['a', 'b', 'c'].map((id) => markerStep({ id, marker: path.join(dir, id) }));
    const decisions = ['skip', 'stop'] as const;
    const operator: ScriptedOperator = new ScriptedOperator({}, (): Review => decisions[operator.reviewed.length - 1]!);
    const { runner, journal, events } = engine({ stateDir, steps, operator });
    const results = await runner.run();
    assert.deepEqual(
      results.map((r) => [r.stepId, r.outcome, r.reason]),
      [
        ['a', 'skipped', 'skipped by the operator'],
        ['b', 'skipped', 'stopped before applying'],
      ],
    );
    assert.equal(runner.stopRequested, true);
    const finished = events.at(-1);
    assert.ok(finished?.type === 'run-finished' && finished.stopped);
    assert.ok(events.some((e) => e.type === 'stop-requested'));
    for (const id of ['a', 'b', 'c']) await assert.rejects(fs.stat(path.join(dir, id)), { code: 'ENOENT' });
    assert.equal(journal.status('a'), 'pending');
  });

  it('requestStop lets the step in progress finish and runs no further step', async (t) => {
    const { dir, stateDir } = await setup(t);
    const steps = ['a', 'b'].map((id) => markerStep({ id, marker: path.join(dir, id) }));
    let runnerRef: { requestStop(): void } | undefined;
    const operator = new ScriptedOperator({}, () => {
      runnerRef!.requestStop();
      return 'apply';
    });
    const { runner } = engine({ stateDir, steps, operator });
    runnerRef = runner;
    const results = await runner.run();
    assert.deepEqual(
      results.map((r) => [r.stepId, r.outcome]),
      [['a', 'verified']],
    );
    await fs.access(path.join(dir, 'a'));
    await assert.rejects(fs.stat(path.join(dir, 'b')), { code: 'ENOENT' });
  });

  it('a step that does not apply to the node is reported with its reason and not planned', async (t) => {
    const { stateDir } = await setup(t);
    const step: Step<FilesFacts> = {
      ...ensureFilesStep({ id: 'cluster', files: [] }),
      notApplicable: (_facts, node) => (node.hostname === 'pve1' ? 'this node is not in a cluster' : undefined),
    };
    const { runner, events } = engine({ stateDir, steps: [step] });
    const [result] = await runner.run();
    assert.equal(result!.outcome, 'not-applicable');
    assert.equal(result!.reason, 'this node is not in a cluster');
    assert.equal(events.filter((e) => e.type === 'step-planned').length, 0);
  });

  it('a probe that throws fails the step with the reason and the run goes on', async (t) => {
    const { dir, stateDir } = await setup(t);
    const broken: Step<null> = {
      ...markerStep({ id: 'broken', marker: path.join(dir, 'never') }),
      probe: async () => {
        throw new Error('sshd -T exited with 255');
      },
    } as unknown as Step<null>;
    const { runner } = engine({ stateDir, steps: [broken, markerStep({ id: 'next', marker: path.join(dir, 'next') })] });
    const results = await runner.run();
    assert.deepEqual(
      results.map((r) => [r.stepId, r.outcome, r.reason]),
      [
        ['broken', 'failed', 'could not probe or plan: sshd -T exited with 255'],
        ['next', 'verified', undefined],
      ],
    );
  });
});

describe('Runner: questions', () => {
  const questionStep = (conf: string) =>
    ensureFilesStep({
      id: 'motd',
      files: [{ path: conf, content: (a) => `${String(a.greeting)}${a.loud ? '!' : ''}\n` }],
      questions: [
        { kind: 'text', id: 'greeting', prompt: 'Greeting', detect: () => 'hello', validate: (v) => (v.length > 10 ? 'at most 10 characters' : undefined) },
        { kind: 'confirm', id: 'loud', prompt: 'Loud?' },
        { kind: 'select', id: 'style', prompt: 'Style', choices: [{ value: 'plain', label: 'Plain' }], when: (a) => a.loud === true },
      ],
    });

  it('asks again with the validation message until the answer is valid, passing the detected default', async (t) => {
    const { stateDir, etc } = await setup(t);
    const conf = path.join(etc, 'motd');
    const operator = new ScriptedOperator({ 'motd.greeting': new Attempts('', 'far too long a greeting', 'hi'), 'motd.loud': 'yes', 'motd.style': 'plain' });
    const { runner, journal } = engine({ stateDir, steps: [questionStep(conf)], operator });
    const [result] = await runner.run();
    assert.equal(result!.outcome, 'verified');
    assert.deepEqual(
      operator.asked.map((r) => [r.question.id, r.defaultValue, r.error]),
      [
        ['greeting', 'hello', undefined],
        ['greeting', 'hello', 'must not be empty'],
        ['greeting', 'hello', 'at most 10 characters'],
        ['loud', undefined, undefined],
        ['style', undefined, undefined],
      ],
    );
    assert.equal(await fs.readFile(conf, 'utf8'), 'hi!\n');
    assert.deepEqual(journal.step('motd')!.answers, { greeting: 'hi', loud: true, style: 'plain' });
  });

  it('does not ask a question whose `when` is false', async (t) => {
    const { stateDir, etc } = await setup(t);
    const operator = new ScriptedOperator({ 'motd.greeting': 'hi', 'motd.loud': false });
    const { runner } = engine({ stateDir, steps: [questionStep(path.join(etc, 'motd'))], operator });
    await runner.run();
    assert.deepEqual(operator.askedKeys, ['motd.greeting', 'motd.loud']);
  });

  it('uses preset answers without asking, and refuses an invalid one naming the field', async (t) => {
    const { stateDir, etc } = await setup(t);
    const conf = path.join(etc, 'motd');
    const operator = new ScriptedOperator();
    const ok = engine({ stateDir, steps: [questionStep(conf)], operator, presetAnswers: { motd: { greeting: 'hey', loud: 'no' } } });
    const [result] = await ok.runner.run();
    assert.equal(result!.outcome, 'verified');
    assert.equal(operator.asked.length, 0);
    assert.equal(await fs.readFile(conf, 'utf8'), 'hey\n');

    const bad = engine({ stateDir, steps: [questionStep(conf)], presetAnswers: { motd: { greeting: 'hey', loud: 'perhaps' } } });
    await assert.rejects(bad.runner.run(), (error: unknown) => {
      assert.ok(error instanceof AnswerError);
      assert.equal(error.field, 'motd.loud');
      assert.equal(error.message, 'motd.loud: wants yes or no');
      return true;
    });
  });
});
