/**
 * The command line against hostile or broken surroundings (issue 11,
 * defects 1, 4, 7 and 12): planted links, devices and FIFOs where files are
 * expected, a damaged journal, a state directory that is a file, a full
 * disk. Every case ends with a message naming the file, a documented exit
 * code and no stack trace, and changes nothing. Runs the built bundle.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa, type Options, type Result } from 'execa';
import { ensureBundle } from '../support/bundle.ts';

let bundle: string;
before(async () => {
  bundle = await ensureBundle();
});

const asRoot = { skip: process.getuid?.() !== 0 && 'needs root' };
const NOBODY = 65534;

async function tempState(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pve-baseline-sec-'));
  await chmod(dir, 0o755);
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Bounded in time: a read that hangs (a FIFO) fails the test instead of stalling it. */
function cli(args: string[], state: string, options: Options = {}) {
  return execa('node', [bundle, ...args], { reject: false, stdin: 'ignore', timeout: 60_000, env: { PVE_BASELINE_STATE_DIR: state, NO_COLOR: '1' }, ...options });
}

/** The documented exit code, the message, and never a stack trace or an "unexpected error". */
function assertRefused(r: Result, exitCode: number, message: RegExp, what: string): void {
  assert.equal(r.timedOut, false, `${what}: finished in time`);
  assert.equal(r.exitCode, exitCode, `${what}: exit code; stderr: ${String(r.stderr)}`);
  assert.match(String(r.stderr), message, what);
  assert.doesNotMatch(String(r.stderr), /\n\s+at |unexpected error|SyntaxError/, `${what}: no stack trace`);
}

test('docs --out never writes through a link another user planted, and a directory is a usage error', asRoot, async (t) => {
  const dir = await tempState(t);
  const sticky = path.join(dir, 'tmp');
  await mkdir(sticky);
  await chmod(sticky, 0o1777);
  const victim = path.join(dir, 'passwd');
  await writeFile(victim, 'root:x:0:0::/root:/bin/bash\n', { mode: 0o644 });
  const link = path.join(sticky, 'p.md');
  await execa('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'ln', '-s', victim, link]);
  const r = await cli(['docs', '--out', link], path.join(dir, 'state'));
  assertRefused(r, 2, new RegExp(`^pve-baseline: docs --out: refusing to write ${link}: it is a symbolic link`), 'a planted link');
  assert.equal(readFileSync(victim, 'utf8'), 'root:x:0:0::/root:/bin/bash\n');
  assert.equal((await import('node:fs')).statSync(victim).mode & 0o7777, 0o644, 'the target keeps its mode');
  const d = await cli(['docs', '--out', sticky], path.join(dir, 'state'));
  assertRefused(d, 2, new RegExp(`refusing to write ${sticky}: it is a directory, not a regular file`), 'a directory');
});

test('a damaged journal is named and never read as "no step has run"; a run that writes keeps it aside', asRoot, async (t) => {
  const dir = await tempState(t);
  const state = path.join(dir, 'state');
  const journal = path.join(state, 'journal.json');
  const answers = path.join(dir, 'answers.yml');
  await writeFile(answers, 'sysctl: {}\n');
  for (const damaged of ['{"schemaVersion":1,"steps":{"sysctl":{"status":"verif', 'garbage\u0000', '{"schemaVersion":1,"steps":{"sysctl":[]}}']) {
    await mkdir(state, { recursive: true });
    await writeFile(journal, damaged);
    for (const args of [['status'], ['status', '--json'], ['check'], ['check', '--json'], ['apply', '--answers', answers, '--dry-run'], ['revert', 'sysctl']]) {
      const r = await cli(args, state);
      const what = `${args.join(' ')} over ${JSON.stringify(damaged)}`;
      assertRefused(r, 2, new RegExp(`^pve-baseline: the journal ${journal} is damaged \\(.+\\), so what ran on this node is not known; nothing was changed\\. To recover, run pve-baseline`), what);
      assert.doesNotMatch(String(r.stdout), /No step has run/, what);
      assert.equal(readFileSync(journal, 'utf8'), damaged, `${what}: left as it was`);
    }
    const r = await cli(['apply', '--answers', answers, '--yes'], state);
    assertRefused(r, 2, /The damaged copy was moved to \S+journal\.json\.corrupt-\S+\. To go on, run pve-baseline again/, 'apply --yes');
    const aside = readdirSync(state).filter((f) => f.startsWith('journal.json.corrupt-'));
    assert.equal(aside.length, 1, readdirSync(state).join(' '));
    assert.equal(readFileSync(path.join(state, aside[0]!), 'utf8'), damaged, 'the damaged copy is kept');
    assert.equal(existsSync(journal), false);
    assert.equal(existsSync(path.join(state, 'lock')), false, 'the lock is released');
    await rm(state, { recursive: true });
  }
});

test('a state directory that is a file is a usage error for every command', asRoot, async (t) => {
  const dir = await tempState(t);
  const state = path.join(dir, 'state-file');
  await writeFile(state, 'not a directory\n');
  const answers = path.join(dir, 'answers.yml');
  await writeFile(answers, 'sysctl: {}\n');
  for (const args of [['status'], ['check', '--json'], ['apply', '--answers', answers, '--dry-run'], ['apply', '--answers', answers, '--yes'], ['revert', 'sysctl', '--yes'], ['docs', '--out', path.join(dir, 'p.md')], ['confirm']]) {
    const r = await cli(args, state);
    assertRefused(r, 2, new RegExp(`^pve-baseline: the state directory ${state} \\(PVE_BASELINE_STATE_DIR\\) is not a directory; give a directory, or move the file away; nothing was changed\\.`), args.join(' '));
    for (const sub of [state, path.join(state, 'x')]) assert.ok(!existsSync(path.join(sub, 'journal.json')));
  }
  assert.equal(readFileSync(state, 'utf8'), 'not a directory\n');
});

test('check --json into a full disk exits 74 with a message, never 1 (which means drift)', async (t) => {
  const dir = await tempState(t);
  // The child's own standard output is /dev/full (as with `> /dev/full`), not a pipe through this process.
  const full = openSync('/dev/full', 'w');
  t.after(() => closeSync(full));
  const child = spawn('node', [bundle, 'check', '--json'], { stdio: ['ignore', full, 'pipe'], env: { PVE_BASELINE_STATE_DIR: path.join(dir, 'state'), NO_COLOR: '1' } });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [exitCode] = (await once(child, 'close')) as [number];
  assertRefused({ exitCode, stderr, timedOut: false } as unknown as Result, 74, /^pve-baseline: the output could not be written to standard output \(ENOSPC\); it is incomplete\.$/m, 'check --json > /dev/full');
});

test('an answers file or a key file must be a regular file of sane size: devices, FIFOs, directories, /proc refused', asRoot, async (t) => {
  const dir = await tempState(t);
  const state = path.join(dir, 'state');
  const fifo = path.join(dir, 'fifo');
  await execa('mkfifo', [fifo]);
  const big = path.join(dir, 'big.yml');
  await writeFile(big, `# ${'x'.repeat(1024 * 1024)}\nsysctl: {}\n`);
  const cases: [string, RegExp][] = [
    ['/dev/zero', /cannot read the answers file \/dev\/zero: not a regular file \(a device\); nothing was changed\./],
    [fifo, /cannot read the answers file \S+fifo: not a regular file \(a named pipe \(FIFO\)\)/],
    [dir, /cannot read the answers file \S+: not a regular file \(a directory\)/],
    ['/proc/self/mem', /cannot read the answers file \/proc\/self\/mem: (not a regular file|cannot be read)/],
    [big, /cannot read the answers file \S+big\.yml: larger than 1 MiB/],
  ];
  for (const [file, message] of cases) {
    const r = await cli(['apply', '--answers', file, '--dry-run'], state);
    assertRefused(r, 2, message, `--answers ${file}`);
  }
  for (const keys of ['/dev/zero', fifo, dir, '/proc/self/mem', '/proc/self/status']) {
    const answers = path.join(dir, 'answers.yml');
    await writeFile(answers, `admin-account:\n  name: alice\n  role: Administrator\n  password_hash: "$y$j9T$abc$def"\nssh-key:\n  keys: ${keys}\n`);
    const r = await cli(['apply', '--answers', answers, '--dry-run'], state);
    assertRefused(r, 2, new RegExp(`ssh-key\\.keys: .*the key file ${keys.replace(/[/.]/g, '\\$&')}: (not a regular file|cannot be read)`), `keys: ${keys}`);
  }
  assert.equal(existsSync(state), false, 'nothing was created');
});

test('a state directory another user could plant files in, or a relative one, is refused before anything is read or written', asRoot, async (t) => {
  const dir = await tempState(t);
  const tmpLike = path.join(dir, 'tmp');
  await mkdir(tmpLike);
  await chmod(tmpLike, 0o1777);
  const elsewhere = path.join(dir, 'elsewhere');
  await mkdir(elsewhere);
  await execa('chown', [`${NOBODY}:${NOBODY}`, elsewhere]);
  await execa('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'ln', '-s', elsewhere, path.join(tmpLike, 'state')]);
  const open = path.join(dir, 'open');
  await mkdir(open);
  await chmod(open, 0o777);
  const cases: [string, RegExp][] = [
    [path.join(tmpLike, 'state'), /is not safe to use: \S+state is a symbolic link owned by uid 65534, not root; it is not followed; nothing was changed\./],
    [elsewhere, /belongs to uid 65534, not root; another user could plant files in it; nothing was changed\./],
    [open, /is writable by other users \(mode 0777\); make it 0700; nothing was changed\./],
    ['relative-state', /the state directory relative-state \(PVE_BASELINE_STATE_DIR\) must be an absolute path; nothing was changed\./],
    [`${dir}/st\nate`, /the state directory \S+st\\nate \(PVE_BASELINE_STATE_DIR\) has a control character \(a line break\?\) in its name/],
  ];
  for (const [state, message] of cases) {
    for (const args of [['status'], ['check', '--json'], ['confirm']]) {
      const r = await cli(args, state, { cwd: dir });
      assertRefused(r, 2, message, `${args.join(' ')} with ${JSON.stringify(state)}`);
    }
  }
  assert.deepEqual(readdirSync(elsewhere), [], 'nothing was written through the link');
  assert.equal(existsSync(path.join(dir, 'relative-state')), false);
});
