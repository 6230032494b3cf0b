/** LocalExec runs real programs with an argv array, never a shell. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CommandError, LocalExec, runChecked } from '../../src/system/exec.ts';
import { Secret } from '../../src/engine/secret.ts';
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
