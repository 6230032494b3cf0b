import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { orderSteps } from '../../src/engine/order.ts';
import { Journal } from '../../src/engine/journal.ts';
import { bareStep, ensureFilesStep, markerStep } from '../fixtures/steps.ts';
import { engine } from '../fixtures/harness.ts';
import { ScriptedOperator } from '../fixtures/operator.ts';
import { tempDir } from '../fixtures/temp.ts';

const ids = (steps: { id: string }[]) => steps.map((s) => s.id);

describe('orderSteps', () => {
  it('keeps the catalogue order when nothing depends on anything', () => {
    assert.deepEqual(ids(orderSteps([bareStep('c'), bareStep('a'), bareStep('b')])), ['c', 'a', 'b']);
  });

  it('moves a dependency before its dependent and keeps the rest in catalogue order', () => {
    const steps = [bareStep('admin'), bareStep('sshd', ['key']), bareStep('firewall'), bareStep('key', ['admin']), bareStep('docs')];
    assert.deepEqual(ids(orderSteps(steps)), ['admin', 'key', 'sshd', 'firewall', 'docs']);
  });

  it('moves a chain of dependencies, deepest first', () => {
    const steps = [bareStep('c', ['b']), bareStep('b', ['a']), bareStep('a')];
    assert.deepEqual(ids(orderSteps(steps)), ['a', 'b', 'c']);
  });

  it('rejects a dependency on an unknown step, naming both', () => {
    assert.throws(() => orderSteps([bareStep('a'), bareStep('sshd', ['ssh-key'])]), {
      message: 'step sshd depends on unknown step ssh-key',
    });
  });

  it('rejects a cycle, naming the steps in it', () => {
    const steps = [bareStep('x'), bareStep('a', ['b']), bareStep('b', ['c']), bareStep('c', ['a'])];
    assert.throws(() => orderSteps(steps), { message: 'steps depend on each other in a cycle: a -> b -> c -> a' });
  });

  it('rejects a step that depends on itself', () => {
    assert.throws(() => orderSteps([bareStep('a', ['a'])]), { message: 'steps depend on each other in a cycle: a -> a' });
  });

  it('does not change the array it was given', () => {
    const steps = [bareStep('b', ['a']), bareStep('a')];
    orderSteps(steps);
    assert.deepEqual(ids(steps), ['b', 'a']);
  });
});

describe('Runner and dependencies', () => {
  it('refuses `only` with an unknown step id, listing the known ones', async (t) => {
    const stateDir = path.join(await tempDir(t), 'state');
    assert.throws(() => engine({ stateDir, steps: [bareStep('a'), bareStep('b')], only: ['a', 'nope'] }), {
      message: 'unknown step: nope (known: a, b)',
    });
  });

  it('refuses a cycle when the runner is built', async (t) => {
    const stateDir = path.join(await tempDir(t), 'state');
    assert.throws(() => engine({ stateDir, steps: [bareStep('a', ['b']), bareStep('b', ['a'])] }), /cycle: a -> b -> a/);
  });

  it('runs the steps in dependency order', async (t) => {
    const stateDir = path.join(await tempDir(t), 'state');
    const { runner } = engine({ stateDir, steps: [bareStep('b', ['a']), bareStep('a')] });
    const results = await runner.run();
    assert.deepEqual(
      results.map((r) => [r.stepId, r.outcome]),
      [
        ['a', 'compliant'],
        ['b', 'compliant'],
      ],
    );
  });

  it('skips a step whose dependency failed, with "needs <title> first", without probing it', async (t) => {
    const dir = await tempDir(t);
    const stateDir = path.join(dir, 'state');
    const broken = ensureFilesStep({
      id: 'admin',
      title: 'Admin account',
      files: [{ path: path.join(dir, 'etc', 'admin.conf'), content: 'admin\n' }],
      extraChecks: () => [{ label: 'admin can log in', ok: false }],
    });
    const dependent = markerStep({ id: 'key', title: 'SSH key', marker: path.join(dir, 'key'), dependsOn: ['admin'] });
    const { runner } = engine({ stateDir, steps: [broken, dependent] });
    const results = await runner.run();
    assert.equal(results[0]!.outcome, 'failed');
    assert.deepEqual(results[1], { stepId: 'key', title: 'SSH key', changes: 0, outcome: 'skipped', reason: 'needs Admin account first' });
    assert.equal(dependent.calls.probe, 0);
    await assert.rejects(fs.stat(path.join(dir, 'key')), { code: 'ENOENT' });
  });

  it('skips a step whose dependency the operator skipped, naming every missing one', async (t) => {
    const dir = await tempDir(t);
    const stateDir = path.join(dir, 'state');
    const a = markerStep({ id: 'a', title: 'First thing', marker: path.join(dir, 'a') });
    const b = markerStep({ id: 'b', title: 'Second thing', marker: path.join(dir, 'b') });
    const c = bareStep('c', ['a', 'b']);
    const { runner } = engine({ stateDir, steps: [a, b, c], operator: new ScriptedOperator({}, 'skip') });
    const results = await runner.run();
    assert.deepEqual(
      results.map((r) => [r.stepId, r.outcome, r.reason]),
      [
        ['a', 'skipped', 'skipped by the operator'],
        ['b', 'skipped', 'skipped by the operator'],
        ['c', 'skipped', 'needs First thing, Second thing first'],
      ],
    );
    assert.equal(c.calls.probe, 0);
  });

  it('with `only`, runs a step whose dependency the journal holds as verified', async (t) => {
    const dir = await tempDir(t);
    const stateDir = path.join(dir, 'state');
    Journal.open(stateDir, 'boot-1').setStatus('a', 'verified');
    const a = bareStep('a', undefined, 'First thing');
    const b = markerStep({ id: 'b', marker: path.join(dir, 'b'), dependsOn: ['a'] });
    const { runner } = engine({ stateDir, steps: [a, b], only: ['b'] });
    assert.deepEqual(
      runner.stepInfos().map((s) => s.id),
      ['b'],
    );
    const results = await runner.run();
    assert.deepEqual(
      results.map((r) => [r.stepId, r.outcome]),
      [['b', 'verified']],
    );
    assert.equal(a.calls.probe, 0);
  });

  it('with `only`, skips a step whose dependency is not verified, naming it by title', async (t) => {
    const dir = await tempDir(t);
    const stateDir = path.join(dir, 'state');
    const a = bareStep('a', undefined, 'First thing');
    const b = markerStep({ id: 'b', marker: path.join(dir, 'b'), dependsOn: ['a'] });
    const { runner } = engine({ stateDir, steps: [a, b], only: ['b'] });
    const results = await runner.run();
    assert.deepEqual(
      results.map((r) => [r.stepId, r.outcome, r.reason]),
      [['b', 'skipped', 'needs First thing first']],
    );
  });
});
