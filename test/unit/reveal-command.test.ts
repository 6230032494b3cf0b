/**
 * A command whose JSON output holds a value to hand out once (a new API
 * token's secret): the engine shows it to the operator or writes it to the
 * operator's file (mode 0600), and the value reaches neither the output
 * lines, the journal nor an error; headless without a file the step is
 * skipped before anything runs; a rollback removes a file it created.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { CommandChange } from '../../src/engine/change.ts';
import type { Operator, RevealRequest } from '../../src/engine/events.ts';
import type { Step } from '../../src/engine/step.ts';
import { planText } from '../../src/cli/plain-output.ts';
import { engine } from '../fixtures/harness.ts';
import { ScriptedOperator } from '../fixtures/operator.ts';
import { scriptedExec } from '../fixtures/scripted-exec.ts';
import { modeOf, tempDir } from '../fixtures/temp.ts';

const SECRET = '6f1c0c5e-8d3b-4b8e-9b1a-0d2f0e4c3a21';
const ARGV = ['pveum', 'user', 'token', 'add', 'svc-ci@pve', 'ci', '--output-format', 'json'];

function tokenStep(saveTo: string | undefined, verifyOk = true): Step {
  const change: CommandChange = {
    kind: 'command',
    argv: ARGV,
    undo: ['pveum', 'user', 'token', 'delete', 'svc-ci@pve', 'ci'],
    reveal: { field: 'value', title: 'The secret of svc-ci@pve!ci', advice: 'Shown once', ...(saveTo ? { saveTo: { path: saveTo, line: 'PVEAPIToken=svc-ci@pve!ci={value}' } } : {}) },
    reason: 'a token for CI',
  };
  return {
    id: 'token',
    title: 'Token',
    summary: 'a token',
    scope: 'datacenter',
    risk: 'safe',
    probe: async () => ({}),
    plan: () => [change],
    verify: async () => [{ label: 'token works', ok: verifyOk }],
  };
}

const pveum = () =>
  scriptedExec([
    [ARGV, { stdout: `{"full-tokenid":"svc-ci@pve!ci","info":{"privsep":1},"value":"${SECRET}"}\n` }],
    [['pveum', 'user', 'token', 'delete', 'svc-ci@pve', 'ci'], {}],
  ]);

class RevealingOperator extends ScriptedOperator implements Operator {
  readonly shown: RevealRequest[] = [];
  async reveal(request: RevealRequest): Promise<void> {
    this.shown.push(request);
  }
}

async function everything(dir: string): Promise<string> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) out.push(await fs.readFile(path.join(entry.parentPath, entry.name), 'utf8'));
  }
  return out.join('\n');
}

test('in the wizard: the value is shown once and written to the named file (0600); the output lines, the journal and the state directory never hold it', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'ci.token');
  const operator = new RevealingOperator();
  const { runner, events } = engine({ stateDir: path.join(dir, 'state'), steps: [tokenStep(file)], operator, exec: pveum() });
  const [result] = await runner.run();
  assert.equal(result!.outcome, 'verified');
  assert.deepEqual(operator.shown.map((r) => [r.stepId, r.title, r.values.map((v) => v.reveal())]), [['token', 'The secret of svc-ci@pve!ci', [SECRET]]]);
  assert.equal(await fs.readFile(file, 'utf8'), `PVEAPIToken=svc-ci@pve!ci=${SECRET}\n`);
  assert.equal(modeOf(await fs.stat(file)), 0o600);
  assert.ok(!JSON.stringify(events).includes(SECRET), 'no event (output line, plan) holds the secret');
  assert.ok(!(await everything(path.join(dir, 'state'))).includes(SECRET), 'neither the journal nor a backup holds it');
  const plan = events.find((e) => e.type === 'step-planned');
  assert.ok(plan?.type === 'step-planned' && planText(plan.plan).some((l) => l.includes(`shows its value once, in the wizard, and writes it to ${file} (mode 0600)`)));
});

test('headless: without a file the step is skipped before anything runs; with one it runs and only the file holds the value', async (t) => {
  const dir = await tempDir(t);
  const exec = pveum();
  const skipped = engine({ stateDir: path.join(dir, 'a'), steps: [tokenStep(undefined)], exec });
  const [first] = await skipped.runner.run();
  assert.deepEqual([first!.outcome, first!.reason], ['skipped', 'needs the wizard: it shows the value once, and nothing keeps them']);
  assert.deepEqual(exec.calls, []);

  const file = path.join(dir, 'ci.token');
  const saved = engine({ stateDir: path.join(dir, 'b'), steps: [tokenStep(file)], exec });
  const [second] = await saved.runner.run();
  assert.equal(second!.outcome, 'verified');
  assert.equal(await fs.readFile(file, 'utf8'), `PVEAPIToken=svc-ci@pve!ci=${SECRET}\n`);
});

test('a failed verify rolls back: the token is deleted and the secret file it created is removed again; a file that existed is replaced, mode 0600 whatever it was', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'ci.token');
  const exec = pveum();
  const { runner } = engine({ stateDir: path.join(dir, 'state'), steps: [tokenStep(file, false)], exec, operator: new RevealingOperator() });
  const [result] = await runner.run();
  assert.equal(result!.outcome, 'failed');
  assert.deepEqual(exec.argvs.at(-1), ['pveum', 'user', 'token', 'delete', 'svc-ci@pve', 'ci']);
  await assert.rejects(fs.stat(file), { code: 'ENOENT' });

  await fs.writeFile(file, 'PVEAPIToken=old\n', { mode: 0o644 });
  const again = engine({ stateDir: path.join(dir, 'state2'), steps: [tokenStep(file)], exec: pveum(), operator: new RevealingOperator() });
  await again.runner.run();
  assert.equal(await fs.readFile(file, 'utf8'), `PVEAPIToken=svc-ci@pve!ci=${SECRET}\n`);
  assert.equal(modeOf(await fs.stat(file)), 0o600);
});

test('a failing command reports its stderr only; what it printed on stdout (it may hold the value) is not repeated', async (t) => {
  const dir = await tempDir(t);
  const exec = scriptedExec([[ARGV, { exitCode: 255, stdout: `{"value":"${SECRET}"}`, stderr: '400 Parameter verification failed.\ntokenid: Token already exists.\n' }]]);
  const { runner, events } = engine({ stateDir: path.join(dir, 'state'), steps: [tokenStep(undefined)], exec, operator: new RevealingOperator() });
  const [result] = await runner.run();
  assert.equal(result!.outcome, 'failed');
  assert.match(result!.reason!, /exited with 255: 400 Parameter verification failed\.\ntokenid: Token already exists\./);
  assert.ok(!JSON.stringify(events).includes(SECRET));
});
