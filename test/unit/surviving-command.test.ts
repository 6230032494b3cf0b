/**
 * A command that survives pve-baseline (CommandChange.survivesExit: the
 * upgrade's dist-upgrade when the SSH session drops): real processes, a
 * real engine killed with SIGKILL while the command runs, and the next
 * run, which waits for it and says how it ended.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Journal } from '../../src/engine/journal.ts';
import { LocalExec } from '../../src/system/exec.ts';
import { engine } from '../fixtures/harness.ts';
import { survivingStep } from '../fixtures/surviving-step.ts';
import { tempDir } from '../fixtures/temp.ts';

const CHILD = fileURLToPath(new URL('../fixtures/surviving-step.ts', import.meta.url));

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const logOf = async (stateDir: string) => {
  const names = (await fs.readdir(path.join(stateDir, 'logs')).catch(() => [] as string[])).filter((n) => n.endsWith('.log'));
  return names.length === 1 ? path.join(stateDir, 'logs', names[0]!) : undefined;
};

test('LocalExec detach: output and fd 3 go to files as they come and reach onLine and onStatus; the command outlives the process that started it', async (t) => {
  const dir = await tempDir(t);
  const output = path.join(dir, 'out.log');
  await fs.writeFile(output, 'header\n');
  const lines: string[] = [];
  let status = '';
  let pid = 0;
  const r = await new LocalExec().run(['sh', '-c', 'echo one; echo s1 >&3; echo two >&2; echo s2 >&3; printf tail'], {
    onLine: (l) => lines.push(l),
    onStatus: (c) => (status += c),
    detach: { output, status: path.join(dir, 'out.status'), onStart: (p) => (pid = p) },
  });
  assert.equal(r.exitCode, 0);
  assert.deepEqual(lines, ['one', 'two', 'tail'], 'the header written before is not output');
  assert.equal(r.stdout, 'one\ntwo\ntail');
  assert.equal(status, 's1\ns2\n');
  assert.equal(readFileSync(output, 'utf8'), 'header\none\ntwo\ntail');
  assert.equal((await fs.stat(path.join(dir, 'out.status'))).mode & 0o777, 0o600, 'made 0600');
  assert.ok(pid > 0);
  await assert.rejects(new LocalExec().run(['cat'], { input: 'secret', detach: { output } }), /takes no input/);

  // A process that starts a detached command and exits at once: the command runs on and writes its end.
  const script = `import { LocalExec } from ${JSON.stringify(fileURLToPath(new URL('../../src/system/exec.ts', import.meta.url)))};
void new LocalExec().run(['sh', '-c', 'while [ ! -e "$0/release" ]; do sleep 0.05; done; echo ended-alone', ${JSON.stringify(dir)}], { detach: { output: ${JSON.stringify(path.join(dir, 'alone.log'))} } });
setTimeout(() => process.exit(0), 300);`;
  await fs.writeFile(path.join(dir, 'starter.mts'), script);
  const starter = spawn(process.execPath, ['--import', 'tsx', path.join(dir, 'starter.mts')], { stdio: 'ignore' });
  await new Promise((resolve) => starter.on('exit', resolve));
  await fs.writeFile(path.join(dir, 'release'), '');
  await until('the command to finish alone', async () => (await fs.readFile(path.join(dir, 'alone.log'), 'utf8').catch(() => '')).includes('ended-alone'));
});

test('while it runs the journal names it; when it ends the log holds the header, the output and the exit code, and the record is gone', async (t) => {
  const dir = await tempDir(t);
  const stateDir = path.join(dir, 'state');
  const { runner, journal, events } = engine({ stateDir, steps: [survivingStep(dir)] });
  const running = runner.run();
  const record = await until('the journal to name it', () => Journal.snapshot(stateDir, 'boot-1').step('long-job')?.running);
  assert.deepEqual(record.argv.slice(0, 2), ['sh', '-c']);
  assert.ok(record.log.startsWith(path.join(stateDir, 'logs', 'long-job-')));
  assert.match(readFileSync(`/proc/${record.pid}/cmdline`, 'utf8'), /^sh\0-c\0/);
  await fs.writeFile(path.join(dir, 'release'), '');
  const [result] = await running;
  assert.equal(result!.outcome, 'verified');
  assert.equal(journal.step('long-job')?.running, undefined);
  const log = readFileSync(record.log, 'utf8');
  assert.match(log, /^\$ sh -c .*\nstart\nend\nexit code 0\n$/);
  assert.equal((await fs.stat(record.log)).mode & 0o777, 0o600);
  assert.equal(existsSync(record.log.replace(/\.log$/, '.status')), false, 'the status file is removed');
  assert.ok(events.some((e) => e.type === 'change-progress' && e.progress.label.startsWith('Unpacking pkg')), 'fd 3 through the file reaches the progress');
  assert.ok(events.some((e) => e.type === 'output' && e.line === 'end'));
});

test('pve-baseline killed while it runs: the command runs on; the next run waits for it, following its log, says how it ended, and finds the step done', async (t) => {
  const dir = await tempDir(t);
  const stateDir = path.join(dir, 'state');
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, stateDir, dir], { stdio: 'ignore' });
  const record = await until('the journal to name it', () => Journal.snapshot(stateDir, 'boot-1').step('long-job')?.running);
  child.kill('SIGKILL');
  await new Promise((resolve) => child.on('exit', resolve));
  assert.ok(existsSync(`/proc/${record.pid}`), 'the command outlives the engine that started it');

  // A dry run (check) only says it still runs.
  const check = engine({ stateDir, steps: [survivingStep(dir)], dryRun: true });
  const [checked] = await check.runner.run();
  assert.equal(checked!.outcome, 'skipped');
  assert.match(checked!.reason!, /^sh -c .* \(pid \d+, started .*\), started by an earlier pve-baseline, still runs; its output: .*long-job-.*\.log$/);

  const next = engine({ stateDir, steps: [survivingStep(dir)] });
  const done = next.runner.run();
  await until('the next run to wait for it', () => next.events.some((e) => e.type === 'output' && /still runs: waiting for it to end/.test(e.line)));
  await fs.writeFile(path.join(dir, 'release'), '');
  const [result] = await done;
  assert.equal(result!.outcome, 'compliant', result!.reason);
  assert.match(result!.reason!, /^an earlier pve-baseline ended while sh -c .* ran; it ran on without it, and this run waited for its end \(its last line: "end"\); its whole output is in .*long-job-.*\.log$/);
  assert.ok(next.events.some((e) => e.type === 'output' && e.line === 'end'), 'the log followed while waiting');
  assert.equal(next.journal.step('long-job')?.running, undefined, 'the record is gone once it was said');
  assert.equal(next.journal.status('long-job'), 'verified');
  assert.equal(readFileSync((await logOf(stateDir))!, 'utf8').split('\n').filter((l) => l === 'start').length, 1, 'run once, not again');
});

/** A journal (boot-1) that names `sh -c job` as pid 1, started at 10:00, its log holding "start". */
async function journalNamingPid1(t: { after(fn: () => unknown): void }): Promise<{ dir: string; stateDir: string }> {
  const dir = await tempDir(t);
  const stateDir = path.join(dir, 'state');
  await fs.mkdir(path.join(stateDir, 'logs'), { recursive: true });
  const log = path.join(stateDir, 'logs', 'long-job-x.log');
  await fs.writeFile(log, '$ sh -c job\nstart\n');
  Journal.open(stateDir, 'boot-1').setRunning('long-job', { argv: ['sh', '-c', 'job'], pid: 1, bootId: 'boot-1', startedAt: '2026-12-03T10:00:00.000Z', log });
  return { dir, stateDir };
}

test('after a reboot the record says the command may have been cut off; its pid is not looked for', async (t) => {
  const { dir, stateDir } = await journalNamingPid1(t);
  // pid 1 runs in every boot: only the boot id tells it is not the command.
  await fs.writeFile(path.join(dir, 'release'), '');
  const { runner } = engine({ stateDir, steps: [survivingStep(dir)], bootId: 'boot-2' });
  const [result] = await runner.run();
  assert.equal(result!.outcome, 'verified', 'planned and run again on what the node has now');
  assert.match(result!.reason!, /^an earlier pve-baseline ended while sh -c job \(pid 1, started 2026-12-03T10:00:00.000Z\) ran; the node has rebooted since, which may have cut it off \(its last line: "start"\)/);
});

test('in the same boot, a command no longer running is said to have ended since, without claiming how', async (t) => {
  const { dir, stateDir } = await journalNamingPid1(t);
  // pid 1 runs, but not this argv: a pid used again is not the command.
  await fs.writeFile(path.join(dir, 'release'), '');
  const { runner, events } = engine({ stateDir, steps: [survivingStep(dir)] });
  const [result] = await runner.run();
  assert.match(result!.reason!, /^an earlier pve-baseline ended while sh -c job \(pid 1, started .*\) ran; it has ended since \(its last line: "start"\); its whole output is in .*long-job-x\.log/);
  assert.ok(!events.some((e) => e.type === 'output' && /waiting for it/.test(e.line)));
});

test('a surviving command needs a log and takes no input: the step fails saying so', async (t) => {
  const dir = await tempDir(t);
  const base = survivingStep(dir);
  const step = { ...base, plan: () => [{ kind: 'command' as const, argv: ['true'], survivesExit: true as const, reason: 'no log' }] };
  const { runner } = engine({ stateDir: path.join(dir, 'state'), steps: [step] });
  const [result] = await runner.run();
  assert.equal(result!.outcome, 'failed');
  assert.match(result!.reason!, /true: a command that survives pve-baseline needs a log to write to/);
});
