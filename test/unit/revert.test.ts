import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describeUndo } from '../../src/engine/apply.ts';
import { revertStep } from '../../src/engine/runner.ts';
import type { Step } from '../../src/engine/step.ts';
import { engine } from '../fixtures/harness.ts';
import { tempDir } from '../fixtures/temp.ts';

function managedFile(target: string, hook: string[]): Step<{ content: string | null }> {
  return {
    id: 'managed',
    title: 'Managed file',
    summary: 'x',
    scope: 'node',
    risk: 'safe',
    async probe(ctx) {
      return { content: await ctx.files.read(target) };
    },
    plan: (facts) =>
      facts.content === 'managed\n'
        ? []
        : [
            { kind: 'file', path: target, before: facts.content, after: 'managed\n', reason: 'manage it' },
            { kind: 'command', argv: ['true', 'apply'], undo: ['true', 'undo'], reason: 'a command with an undo' },
            { kind: 'command', argv: ['true', 'once'], reason: 'a command without one' },
          ],
    async verify(ctx) {
      return [{ label: 'managed', ok: (await ctx.files.read(target)) === 'managed\n' }];
    },
    async afterRollback() {
      hook.push('after');
    },
  };
}

test('revert undoes a verified step newest first, runs the step hook, and says beforehand what it will do', async (t) => {
  const dir = await tempDir(t);
  const target = path.join(dir, 'app.conf');
  await writeFile(target, 'original\n');
  const hook: string[] = [];
  const step = managedFile(target, hook);
  const e = engine({ stateDir: dir, steps: [step] });
  const [result] = await e.runner.run();
  assert.equal(result!.outcome, 'verified');
  const applied = e.journal.step('managed')!.applied;
  const lines = describeUndo(applied);
  assert.equal(lines.length, 3);
  assert.equal(lines[0], 'nothing to undo for: true once');
  assert.equal(lines[1], 'run true undo (undoes: true apply)');
  assert.match(lines[2]!, new RegExp(`^restore ${target.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} from .+ \\(sha256 [0-9a-f]{12}…\\)$`));

  const problems = await revertStep(step, { journal: e.journal, backups: e.backups, ctx: { exec: e.exec, files: e.files, node: (await import('../fixtures/node.ts')).testNode, log: () => undefined, answersOf: () => ({}), journalRecords: () => ({}) } });
  assert.deepEqual(problems, []);
  assert.equal(await readFile(target, 'utf8'), 'original\n');
  assert.deepEqual(hook, ['after']);
  assert.deepEqual(e.journal.step('managed')!.applied, [], 'the record is cleared once undone');
});
