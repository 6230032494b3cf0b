/**
 * The command line, run as a person would: the built bundle in a child
 * process, with real files. (The wizard itself needs a terminal; see
 * test/cli/wizard-pty.test.ts.)
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa, type Options } from 'execa';
import { ensureBundle } from '../support/bundle.ts';

let bundle: string;
before(async () => {
  bundle = await ensureBundle();
});

async function tempState(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pve-baseline-cli-'));
  await chmod(dir, 0o755);
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function cli(args: string[], options: Options & { state?: string } = {}) {
  const { state, ...rest } = options;
  return execa('node', [bundle, ...args], {
    reject: false,
    stdin: 'ignore',
    env: { PVE_BASELINE_STATE_DIR: state ?? '/nonexistent/pve-baseline-state', NO_COLOR: '1' },
    ...rest,
  });
}

test('--help lists the modes and the exit codes', async () => {
  const r = await cli(['--help']);
  assert.equal(r.exitCode, 0);
  for (const text of ['pve-baseline apply --answers FILE', 'pve-baseline check [--json]', 'pve-baseline status', '130  stopped with Ctrl+C', '4    not root', '74   the output or a file could not be written']) {
    assert.ok(String(r.stdout).includes(text), `--help mentions ${text}`);
  }
  assert.equal((await cli(['help'])).stdout, r.stdout);
});

test('--version prints the package version', async () => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  const r = await cli(['--version']);
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout, `pve-baseline ${version}`);
});

test('the wizard without a terminal says what to do and exits 2', async () => {
  const r = await cli([]);
  assert.equal(r.exitCode, 2);
  assert.match(String(r.stderr), /the wizard needs a terminal/);
  assert.match(String(r.stderr), /ssh -t root@NODE pve-baseline/);
  assert.match(String(r.stderr), /pve-baseline apply --answers FILE/);
  assert.equal(r.stdout, '');
});

test('usage errors name the option and exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [['bogus'], /unknown command 'bogus'/],
    [['apply'], /apply needs --answers FILE/],
    [['apply', '--answers', 'x.yml', '--yes', '--dry-run'], /--yes and --dry-run contradict/],
    [['check', '--yes'], /--yes does not go with 'check'/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
    [['apply', '--answers', 'x.yml', '--only', ','], /--only wants a comma-separated list/],
    [['revert'], /revert wants exactly one step id/],
    [['docs', '--json'], /--json does not go with 'docs'/],
    [['revert', 'sysctl', '--json'], /--json does not go with 'revert'/],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args);
    assert.equal(r.exitCode, 2, `exit code for ${args.join(' ')}`);
    assert.match(String(r.stderr), message);
    assert.match(String(r.stderr), /Try 'pve-baseline --help'\./);
  }
});

test('a malformed answers file is refused with the line and the field, and nothing is touched', async (t) => {
  const state = await tempState(t);
  const stateDir = path.join(state, 'state');
  const cases: [string, RegExp[]][] = [
    ['sysctl:\n  profile: strict\n', [/answers\.yml:2: sysctl\.profile: not a question of step sysctl \(it asks none\)/]],
    ['sysctl: {}\nsshd-hardning:\n  x: 1\n', [/answers\.yml:2: sshd-hardning: not a step \(steps: admin-account, ssh-key, break-glass, sshd-hardening, firewall, fail2ban, two-factor, repositories, upgrade, auto-updates, sysctl, audit-log, access-model, api-tokens, config-backup, access-policy\)/]],
    ['sysctl: [1, 2\n', [/answers\.yml:\d+:\d+: not valid YAML/]],
    ['- sysctl\n', [/answers\.yml:1: wants a mapping of step ids to their answers/]],
    ['version: 2\nsysctl:\n', [/answers\.yml:1: version: must be 1/]],
  ];
  for (const [yaml, messages] of cases) {
    const file = path.join(state, 'answers.yml');
    await writeFile(file, yaml);
    const r = await cli(['apply', '--answers', file, '--yes'], { state: stateDir });
    assert.equal(r.exitCode, 2, yaml);
    assert.match(String(r.stderr), /the answers file has a problem; nothing was changed/);
    for (const m of messages) assert.match(String(r.stderr), m);
    assert.equal(existsSync(stateDir), false, 'no journal, lock or backup was created');
  }
});

test('an unreadable answers file is named', async () => {
  const r = await cli(['apply', '--answers', '/nonexistent/answers.yml']);
  assert.equal(r.exitCode, 2);
  assert.match(String(r.stderr), /cannot read the answers file \/nonexistent\/answers\.yml: no such file; nothing was changed\./);
});

test('not root: apply refuses to change anything and exits 4; a dry run still shows the plan', { skip: process.getuid?.() !== 0 && 'needs root to drop to another user' }, async (t) => {
  const state = await tempState(t);
  const stateDir = path.join(state, 'state');
  const answers = path.join(state, 'answers.yml');
  await writeFile(answers, 'sysctl: {}\n');
  await chmod(answers, 0o644);
  const asNobody = (args: string[]) =>
    execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'node', bundle, ...args], {
      reject: false,
      stdin: 'ignore',
      env: { PVE_BASELINE_STATE_DIR: stateDir, NO_COLOR: '1' },
    });
  const refused = await asNobody(['apply', '--answers', answers, '--yes']);
  assert.equal(refused.exitCode, 4);
  assert.match(String(refused.stderr), /must run as root; nothing was changed/);
  assert.equal(existsSync(stateDir), false);
  const dry = await asNobody(['apply', '--answers', answers, '--dry-run']);
  assert.equal(dry.exitCode, 0, String(dry.stderr));
  assert.match(String(dry.stdout), /dry run on/);
  assert.equal(existsSync(stateDir), false, 'a dry run writes no journal');
});

test('check is read-only, exits 1 on drift and has a JSON form', async (t) => {
  const state = await tempState(t);
  const stateDir = path.join(state, 'state');
  const text = await cli(['check'], { state: stateDir });
  const json = await cli(['check', '--json'], { state: stateDir });
  const report = JSON.parse(String(json.stdout));
  assert.equal(typeof report.compliant, 'boolean');
  assert.equal(json.exitCode, report.compliant ? 0 : 1);
  assert.equal(text.exitCode, json.exitCode);
  const sysctl = report.steps.find((s: { id: string }) => s.id === 'sysctl');
  assert.ok(sysctl, 'the sysctl step is reported');
  assert.ok(['compliant', 'drift', 'not-applicable'].includes(sysctl.status));
  if (sysctl.status === 'drift') {
    assert.ok(sysctl.changes.length > 0);
    assert.match(String(text.stdout), /sysctl\s+drift/);
  }
  assert.equal(existsSync(stateDir), false, 'check creates no journal');
});

test('status with no journal says so', async (t) => {
  const state = await tempState(t);
  const r = await cli(['status'], { state: path.join(state, 'state') });
  assert.equal(r.exitCode, 0);
  assert.match(String(r.stdout), /No step has run on this node yet\./);
});

test('a second pve-baseline is refused while the first holds the lock (exit 3)', { skip: process.getuid?.() !== 0 && 'apply needs root' }, async (t) => {
  const state = await tempState(t);
  const stateDir = path.join(state, 'state');
  const answers = path.join(state, 'answers.yml');
  await writeFile(answers, 'sysctl: {}\n');
  const holder = execa('sleep', ['30'], { reject: false });
  t.after(() => {
    holder.kill();
  });
  const { mkdir } = await import('node:fs/promises');
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  await writeFile(path.join(stateDir, 'lock'), JSON.stringify({ pid: holder.pid, bootId, startedAt: '2026-11-22T10:00:00.000Z', command: 'wizard' }));
  const r = await cli(['apply', '--answers', answers, '--yes'], { state: stateDir });
  assert.equal(r.exitCode, 3);
  assert.match(String(r.stderr), new RegExp(`Another pve-baseline is running \\(pid ${holder.pid}, "wizard"`));
});

test('revert names unknown steps, and with no record there is nothing to undo', async (t) => {
  const state = await tempState(t);
  const unknown = await cli(['revert', 'nosuch'], { state: path.join(state, 'state') });
  assert.equal(unknown.exitCode, 2);
  assert.match(String(unknown.stderr), /revert: unknown step nosuch \(steps: admin-account, ssh-key, break-glass, sshd-hardening, firewall, fail2ban, two-factor, repositories, upgrade, auto-updates, sysctl, audit-log, access-model, api-tokens, config-backup, access-policy\)/);
  const nothing = await cli(['revert', 'sysctl', '--yes'], { state: path.join(state, 'state') });
  assert.equal(nothing.exitCode, 0);
  assert.match(String(nothing.stdout), /Nothing to revert for sysctl: the journal holds no change of it\./);
  assert.equal(existsSync(path.join(state, 'state')), false);
});

test('docs writes the access-policy document, mode 0600, and passes its own reading', { skip: process.getuid?.() !== 0 && 'docs needs root' }, async (t) => {
  const state = await tempState(t);
  const out = path.join(state, 'out', 'policy.md');
  const missing = await cli(['docs', '--out', out], { state: path.join(state, 'state') });
  assert.equal(missing.exitCode, 2, 'a directory the operator names must exist');
  assert.match(String(missing.stderr), /docs --out: the directory of \S+policy\.md does not exist; create it first, or give another path\. Nothing was written\./);
  assert.equal(existsSync(path.dirname(out)), false);
  await mkdir(path.dirname(out));
  const r = await cli(['docs', '--out', out], { state: path.join(state, 'state') });
  assert.equal(r.exitCode, 0, String(r.stderr));
  assert.match(String(r.stdout), /Wrote .*policy\.md \(\d+ lines, mode 0600\)\./);
  const { statSync } = await import('node:fs');
  assert.equal(statSync(out).mode & 0o777, 0o600);
  const text = readFileSync(out, 'utf8');
  assert.match(text, /^# Access policy: /);
  assert.match(text, /## Evidence/);
});
