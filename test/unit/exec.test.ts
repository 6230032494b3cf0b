/** LocalExec runs real programs with an argv array, never a shell. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CommandError, DEFAULT_TIMEOUT_MS, defaultTimeoutMs, LocalExec, runChecked } from '../../src/system/exec.ts';
import { Secret } from '../../src/system/secret.ts';
import { tempDir } from '../fixtures/temp.ts';

const exec = new LocalExec();

describe('LocalExec', () => {
  it('runs a program and returns its output and exit code', async () => {
    const r = await exec.run(['printf', '%s|%s\\n', 'a b', 'c']);
    assert.deepEqual(r, { argv: ['printf', '%s|%s\\n', 'a b', 'c'], exitCode: 0, stdout: 'a b|c\n', stderr: '' });
  });

  it('never interprets shell syntax in arguments', async (t) => {
    const dir = await tempDir(t);
    const canary = path.join(dir, 'canary');
    const r = await exec.run(['printf', '%s', `$(touch ${canary}); \`touch ${canary}\` | > ${canary}`]);
    assert.equal(r.stdout, `$(touch ${canary}); \`touch ${canary}\` | > ${canary}`);
    await assert.rejects(fs.stat(canary), { code: 'ENOENT' });
  });

  it('feeds standard input from a string or a Secret', async () => {
    assert.equal((await exec.run(['cat'], { input: 'plain\n' })).stdout, 'plain\n');
    assert.equal((await exec.run(['cat'], { input: new Secret('alice:pw\n') })).stdout, 'alice:pw\n');
  });

  it('gives no standard input when there is none (a program reading it gets EOF at once)', async () => {
    assert.deepEqual(await exec.run(['cat']), { argv: ['cat'], exitCode: 0, stdout: '', stderr: '' });
  });

  it('streams each line of stdout and stderr to onLine', async (t) => {
    const dir = await tempDir(t);
    const lines: string[] = [];
    const r = await exec.run(['cat', '-', path.join(dir, 'missing')], { input: 'one\r\ntwo\nthree', onLine: (l) => lines.push(l) });
    assert.equal(r.exitCode, 1);
    assert.deepEqual([...lines].sort(), ['one', 'two', 'three', `cat: ${path.join(dir, 'missing')}: No such file or directory`].sort());
  });

  it('sets a quiet C.UTF-8 environment, which options.env may extend', async () => {
    assert.equal((await exec.run(['printenv', 'LC_ALL'])).stdout, 'C.UTF-8\n');
    assert.equal((await exec.run(['printenv', 'DEBIAN_FRONTEND'])).stdout, 'noninteractive\n');
    assert.equal((await exec.run(['printenv', 'PVE_TEST'], { env: { PVE_TEST: 'yes' } })).stdout, 'yes\n');
  });

  it('runs in the given directory', async (t) => {
    const dir = await tempDir(t);
    await exec.run(['touch', 'made-here'], { cwd: dir });
    await fs.access(path.join(dir, 'made-here'));
  });

  it('reports a program that is not installed, with exit code 127 and a reason', async () => {
    const r = await exec.run(['pve-baseline-no-such-program']);
    assert.equal(r.exitCode, 127);
    assert.equal(r.notFound, true);
    assert.equal(r.stderr, 'pve-baseline-no-such-program: command not found');
  });

  it('refuses an empty argv', async () => {
    await assert.rejects(exec.run([]), { message: 'exec: empty argv' });
  });
});

describe('runChecked', () => {
  it('returns the result of a program that exits 0', async () => {
    assert.equal((await runChecked(exec, ['printf', 'ok'])).stdout, 'ok');
  });

  it('throws a CommandError naming the argv, exit code and the last lines of output', async (t) => {
    const dir = await tempDir(t);
    const missing = path.join(dir, 'nope');
    await assert.rejects(runChecked(exec, ['cat', missing]), (error: unknown) => {
      assert.ok(error instanceof CommandError);
      assert.equal(error.message, `cat ${missing} exited with 1: cat: ${missing}: No such file or directory`);
      assert.equal(error.result.exitCode, 1);
      return true;
    });
    await assert.rejects(runChecked(exec, ['test', '-e', missing]), { message: `test -e ${missing} exited with 1` });
    await assert.rejects(runChecked(exec, ['pve-baseline-no-such-program', '--x']), {
      message: 'pve-baseline-no-such-program --x exited with 127: pve-baseline-no-such-program: command not found',
    });
  });

  it('keeps only the last five lines of a long complaint (stdout when stderr is empty)', async (t) => {
    const dir = await tempDir(t);
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    await fs.writeFile(a, 'one\n');
    await fs.writeFile(b, 'two\n');
    // diff exits 1 and writes its report on stdout: 1c1, < one, ---, > two
    await assert.rejects(runChecked(exec, ['diff', a, b]), { message: `diff ${a} ${b} exited with 1: 1c1\n< one\n---\n> two` });
    await fs.writeFile(b, 'two\nthree\nfour\n');
    await assert.rejects(runChecked(exec, ['diff', a, b]), { message: `diff ${a} ${b} exited with 1: < one\n---\n> two\n> three\n> four` });
  });
});

/** Whether a process is gone (or a zombie nobody needs to stop any more). */
async function gone(pid: number): Promise<boolean> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** Poll (no guessed sleep) until `check` holds; false when it never did within 5 s. */
async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  const start = Date.now();
  while (Date.now() - start < 5000) {
    if (await check()) return true;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return false;
}

describe('time limits', () => {
  it('stops a command at its limit and says so, naming the argv', async () => {
    const r = await exec.run(['sleep', '30'], { timeoutMs: 200 });
    assert.equal(r.exitCode, 124);
    assert.deepEqual(r.timedOut, { afterMs: 200 });
    assert.equal(r.stderr, 'timed out after 0.2 s: sleep 30');
  });

  it('gives every command a limit even when the caller names none', async () => {
    const short = new LocalExec({ defaultMs: 200 });
    const r = await short.run(['sleep', '30']);
    assert.equal(r.stderr, 'timed out after 0.2 s: sleep 30');
    assert.equal(defaultTimeoutMs(['pveum', 'user', 'list']), DEFAULT_TIMEOUT_MS);
    assert.equal(DEFAULT_TIMEOUT_MS, 120_000);
    assert.ok(defaultTimeoutMs(['/usr/bin/apt-get', 'install', '-y', 'sudo']) > DEFAULT_TIMEOUT_MS, 'package installs get longer');
  });

  it('stops the whole process group: a child the command started is stopped too, and its open pipe does not hold the result', async () => {
    // The shell prints its background child's pid, then waits; the child holds stdout open.
    const r = await exec.run(['sh', '-c', 'sleep 30 & echo $!; wait'], { timeoutMs: 300 });
    assert.equal(r.exitCode, 124);
    const child = Number(r.stdout.trim());
    assert.ok(Number.isInteger(child) && child > 1, `the child's pid in ${JSON.stringify(r.stdout)}`);
    assert.ok(await eventually(() => gone(child)), `sleep ${child} was stopped`);
    assert.match(r.stderr, /timed out after 0\.3 s: sh -c sleep 30 & echo \$!; wait$/);
  });

  it('kills a command that ignores SIGTERM', async () => {
    const quick = new LocalExec({ killGraceMs: 100 });
    // An ignored signal stays ignored across exec, so sleep ignores SIGTERM too.
    const r = await quick.run(['sh', '-c', 'trap "" TERM; sleep 30'], { timeoutMs: 200 });
    assert.equal(r.exitCode, 124);
    assert.match(r.stderr, /^timed out after 0\.2 s: sh -c/);
  });

  it('returns even when something outside the group keeps the output open', async (t) => {
    const quick = new LocalExec({ killGraceMs: 50, giveUpMs: 50 });
    let escaped: number | undefined;
    t.after(() => {
      if (escaped) process.kill(escaped, 'SIGKILL');
    });
    // setsid puts the sleeper in a session of its own, out of reach of the group's signals.
    const r = await quick.run(['sh', '-c', 'setsid sleep 30 & echo $!; wait'], {
      timeoutMs: 200,
      onLine: (line) => (escaped ??= Number(line)),
    });
    assert.equal(r.exitCode, 124);
    assert.ok(r.timedOut);
    assert.ok(escaped && escaped > 1);
  });

  it('reports a timeout through runChecked as "timed out after N s: ARGV", with what the command said first', async () => {
    await assert.rejects(runChecked(exec, ['sleep', '30'], { timeoutMs: 250 }), (error: unknown) => {
      assert.ok(error instanceof CommandError);
      assert.equal(error.message, 'timed out after 0.25 s: sleep 30');
      return true;
    });
    await assert.rejects(runChecked(exec, ['sh', '-c', 'echo waiting for the lock >&2; exec sleep 30'], { timeoutMs: 300 }), {
      message: 'timed out after 0.3 s: sh -c echo waiting for the lock >&2; exec sleep 30\nwaiting for the lock',
    });
  });

  it('refuses a limit that is not a positive number of milliseconds', async () => {
    await assert.rejects(exec.run(['true'], { timeoutMs: 0 }), { message: 'exec: timeoutMs must be a positive number of milliseconds, not 0' });
    await assert.rejects(exec.run(['true'], { timeoutMs: Number.POSITIVE_INFINITY }), /timeoutMs must be a positive number/);
  });

  it('a command that finishes in time is untouched by its limit', async () => {
    assert.deepEqual(await exec.run(['printf', 'ok'], { timeoutMs: 30_000 }), { argv: ['printf', 'ok'], exitCode: 0, stdout: 'ok', stderr: '' });
  });
});
