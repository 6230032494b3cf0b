/**
 * The revert the node owns: the real revert program (src/engine/revert/revert.sh)
 * with the data rendered for each case is run with /bin/sh against files in a
 * temp dir (backups taken with BackupStore), the reload replaced by a harmless
 * `touch`. Runs as root (chown, setpriv).
 *
 * No test here may touch the host's systemd units: every child process finds
 * a fake systemctl first on its PATH, which records its arguments, and the
 * record must stay empty (the boot unit and the timers of a temp unit dir are
 * never the node's).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BackupStore, LocalFiles, type BackupRecord } from '../../src/system/files.ts';
import { LocalExec, type Exec, type ExecResult } from '../../src/system/exec.ts';
import {
  armRevert,
  BOOT_UNIT,
  disarmRevert,
  pendingReverts,
  program,
  renderBootRunner,
  renderBootUnit,
  renderRevertScript,
  revertNow,
  revertPaths,
  shellQuote,
} from '../../src/engine/revert/index.ts';
import { modeOf, tempDir } from '../fixtures/temp.ts';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

// A fake systemctl first on every child's PATH (the revert program keeps the caller's PATH first).
const fakeBin = mkdtempSync(path.join(os.tmpdir(), 'pve-baseline-fake-systemctl-'));
const systemctlLog = path.join(fakeBin, 'calls');
writeFileSync(path.join(fakeBin, 'systemctl'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${shellQuote(systemctlLog)}\n`, { mode: 0o755 });
process.env.PATH = `${fakeBin}:${process.env.PATH ?? '/usr/bin:/bin'}`;
const systemctlCalls = (): string[] => {
  try {
    return readFileSync(systemctlLog, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};
after(() => {
  const calls = systemctlCalls();
  rmSync(fakeBin, { recursive: true, force: true });
  assert.deepEqual(calls, [], 'a test ran systemctl on the host');
});

/** Install the real revert program and its data for `id`, as armRevert does. */
async function install(stateDir: string, id: string, data: string): Promise<string> {
  const p = revertPaths(stateDir, id);
  await fs.mkdir(p.dir, { recursive: true });
  await fs.writeFile(p.script, program('revert.sh'), { mode: 0o700 });
  await fs.writeFile(p.data, data, { mode: 0o600 });
  return p.script;
}
const BINARY = Buffer.concat([Buffer.from('Port 22\r\n'), Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]), Buffer.from('ünïcode, no newline')]);
const NASTY = [`it's "quoted" and spaced`, 'dollar $HOME `backtick` $(touch pwned) ; & | *', "trailing quote'", 'new\nline'];

async function sh(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const before = systemctlCalls().length;
  let result: { code: number; out: string };
  try {
    const r = await run('/bin/sh', args, { env: { ...process.env, ...env } });
    result = { code: 0, out: r.stdout + r.stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    result = { code: e.code, out: e.stdout + e.stderr };
  }
  assert.deepEqual(systemctlCalls().slice(before), [], `sh ${args.join(' ')} ran systemctl on the host`);
  return result;
}

interface Fixture {
  dir: string;
  state: string;
  reloaded: string;
  store: BackupStore;
  records: BackupRecord[];
  /** path -> [bytes, mode, uid, gid] before the change (null: did not exist) */
  before: Map<string, [Buffer, number, number, number] | null>;
  script: string;
  /** The rendered data (what armRevert takes as `script`). */
  data: string;
  id: string;
}

/** Files as they were, backed up, then changed the way an apply would change them. */
async function fixture(
  t: { after(fn: () => unknown): void },
  id = 'test-1',
  names = ['sshd_config', `sub dir/${NASTY[0]}`, `${NASTY[1]}.conf`],
  stateName = "state dir 'x'",
  /** False: leave the program and its data to armRevert. */
  installed = true,
): Promise<Fixture> {
  const dir = await tempDir(t, 'pve-baseline-revert-');
  const state = path.join(dir, stateName);
  const reloaded = path.join(dir, "reloaded it's");
  const store = new BackupStore(path.join(state, 'backups'));
  const before = new Map<string, [Buffer, number, number, number] | null>();
  const records: BackupRecord[] = [];
  for (const [i, name] of names.entries()) {
    const file = path.join(dir, 'etc', name);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const content = Buffer.concat([BINARY, Buffer.from(` ${i}`)]);
    await fs.writeFile(file, content);
    await fs.chown(file, 1000 + i, 2000 + i);
    await fs.chmod(file, [0o644, 0o600, 0o4750][i % 3]!);
    before.set(file, [content, [0o644, 0o600, 0o4750][i % 3]!, 1000 + i, 2000 + i]);
    records.push(await store.backup(id, file));
  }
  // a drop-in that did not exist before
  const dropIn = path.join(dir, 'etc', 'sshd_config.d', `10-pve-baseline ${NASTY[2]}.conf`);
  before.set(dropIn, null);
  records.push(await store.backup(id, dropIn));
  // the change
  for (const file of before.keys()) {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, 'PasswordAuthentication no\n');
    await fs.chmod(file, 0o666);
    await fs.chown(file, 0, 0);
  }
  const data = renderRevertScript({ id, backups: records, reload: [['touch', reloaded]], stateDir: state, unitDir: path.join(dir, 'units') });
  const script = installed ? await install(state, id, data) : revertPaths(state, id).script;
  return { dir, state, reloaded, store, records, before, script, data, id };
}

async function markPending(f: Fixture): Promise<void> {
  const p = revertPaths(f.state, f.id);
  await fs.mkdir(p.pendingDir, { recursive: true });
  await fs.writeFile(p.marker, `${f.id}\n`);
}

async function assertRestored(f: Fixture): Promise<void> {
  for (const [file, was] of f.before) {
    if (was === null) {
      await assert.rejects(fs.lstat(file), { code: 'ENOENT' }, `${file} should be gone`);
      continue;
    }
    assert.deepEqual(await fs.readFile(file), was[0], `${file}: bytes`);
    const st = await fs.stat(file);
    assert.equal(modeOf(st).toString(8), was[1].toString(8), `${file}: mode`);
    assert.deepEqual([st.uid, st.gid], [was[2], was[3]], `${file}: owner`);
  }
  for (const r of f.records) assert.ok(await f.store.matches(r), `${r.path} matches its backup`);
}

async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}

describe('shellQuote', () => {
  it('passes any string through sh unchanged', async () => {
    for (const value of [...NASTY, '', "'", "''", '\\', '"\'"', '%s %%']) {
      const r = await run('/bin/sh', ['-c', `printf '%s' ${shellQuote(value)}`]);
      assert.equal(r.stdout, value);
    }
  });
  it('refuses NUL', () => {
    assert.throws(() => shellQuote('a\0b'));
  });
});

describe('the revert script', () => {
  before(() => {
    assert.ok(isRoot, 'these tests chown files and must run as root');
  });

  it('is plain POSIX sh (dash -n, no bash-isms we know of); its data holds values only', async (t) => {
    const f = await fixture(t);
    const text = await fs.readFile(f.script, 'utf8');
    assert.match(text, /^#!\/bin\/sh\n/);
    assert.doesNotMatch(text, /\[\[|^\s*local\s|\bfunction\b|\$'|<<<|^\s*source\s|pipefail|==/m);
    const dash = await run('dash', ['-n', f.script]).then(
      () => 0,
      (e: { code: number }) => e.code,
    );
    assert.equal(dash, 0);
    // Every line of the data is a comment or NAME='value'.
    for (const line of f.data.split('\n').filter(Boolean)) assert.match(line, /^(#.*|[A-Z][A-Z0-9_]*='(?:[^']|'\\'')*')$/s, line);
  });

  it('puts every file back byte for byte with mode and owner, removes new ones, reloads, records, disarms', async (t) => {
    const f = await fixture(t);
    await markPending(f);
    const r = await sh([f.script]);
    assert.equal(r.code, 0, r.out);
    await assertRestored(f);
    assert.ok(await exists(f.reloaded), 'the reload ran');
    const p = revertPaths(f.state, f.id);
    assert.match(await fs.readFile(p.result, 'utf8'), /^reverted at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(timer\)\n$/);
    assert.equal(await exists(p.marker), false);
    assert.equal(await exists(p.firing), false);
    assert.equal(await exists(path.join(f.dir, 'pwned')), false);
    assert.equal(await exists('pwned'), false);
    // no temp files left next to the targets
    const left = await fs.readdir(path.join(f.dir, 'etc'), { recursive: true });
    assert.deepEqual(left.filter((n) => String(n).includes('pve-baseline-revert')), []);
  });

  it('is safe to run twice: a second timer run does nothing, a second forced run changes nothing', async (t) => {
    const f = await fixture(t);
    await markPending(f);
    assert.equal((await sh([f.script])).code, 0);
    await fs.rm(f.reloaded);
    const again = await sh([f.script]);
    assert.equal(again.code, 0, again.out);
    assert.match(again.out, /nothing pending/);
    assert.equal(await exists(f.reloaded), false, 'no reload when nothing was pending');
    await assertRestored(f);
    const forced = await sh([f.script, 'now']);
    assert.equal(forced.code, 0, forced.out);
    assert.match(forced.out, /already as it was/);
    await assertRestored(f);
  });

  it('does nothing from the timer when the change was confirmed (no marker)', async (t) => {
    const f = await fixture(t);
    const r = await sh([f.script]);
    assert.equal(r.code, 0);
    for (const file of f.before.keys()) assert.equal(await fs.readFile(file, 'utf8'), 'PasswordAuthentication no\n');
    assert.equal(await exists(f.reloaded), false);
  });

  it('refuses a backup copy whose checksum is wrong, restores the rest, reports it and stays pending', async (t) => {
    const f = await fixture(t);
    await markPending(f);
    const bad = f.records[1]!;
    await fs.appendFile(bad.copy!, 'tampered');
    const r = await sh([f.script]);
    assert.equal(r.code, 1, r.out);
    assert.equal(await fs.readFile(bad.path, 'utf8'), 'PasswordAuthentication no\n', 'the file with a bad copy is not touched');
    for (const rec of f.records.filter((x) => x !== bad)) assert.ok(await f.store.matches(rec), `${rec.path} restored`);
    const p = revertPaths(f.state, f.id);
    const result = await fs.readFile(p.result, 'utf8');
    assert.match(result, /^FAILED at .* \(timer\):\n/);
    assert.ok(result.includes(`${bad.path}: the backup copy ${bad.copy} does not match its checksum`), result);
    assert.ok(await exists(p.firing), 'the claim is kept, so the boot hook tries again');
    // Not in the index (this fixture never armed), but the claimed marker on the node is the truth.
    const pending = await pendingReverts(new LocalFiles(), { stateDir: f.state });
    assert.deepEqual(
      pending.map((x) => [x.id, x.state, x.indexed, x.armedWith]),
      [[f.id, 'interrupted', false, 'unknown']],
    );
    assert.match(pending[0]!.result!, /^FAILED at /);
    // a missing copy is reported too
    await fs.rm(bad.copy!);
    const r2 = await sh([f.script]);
    assert.equal(r2.code, 1);
    assert.match(await fs.readFile(p.result, 'utf8'), /backup copy .* is missing; not restored/);
  });

  it('writes through a symlink, as the backup was taken', async (t) => {
    const dir = await tempDir(t, 'pve-baseline-revert-');
    const real = path.join(dir, "priv/authorized keys'");
    const link = path.join(dir, 'root/.ssh/authorized_keys');
    await fs.mkdir(path.dirname(real), { recursive: true });
    await fs.mkdir(path.dirname(link), { recursive: true });
    await fs.writeFile(real, 'ssh-ed25519 AAAA old\n', { mode: 0o600 });
    await fs.symlink(real, link);
    const store = new BackupStore(path.join(dir, 'state/backups'));
    const rec = await store.backup('s', link);
    await fs.writeFile(link, 'ssh-ed25519 AAAA new\n');
    const state = path.join(dir, 'state');
    const script = await install(state, 's', renderRevertScript({ id: 's', backups: [rec], reload: [], stateDir: state, unitDir: path.join(dir, 'units') }));
    const r = await sh([script, 'now']);
    assert.equal(r.code, 0, r.out);
    assert.equal((await fs.lstat(link)).isSymbolicLink(), true);
    assert.equal(await fs.readFile(real, 'utf8'), 'ssh-ed25519 AAAA old\n');
  });

  it('reports a failing reload', async (t) => {
    const dir = await tempDir(t, 'pve-baseline-revert-');
    const script = await install(dir, 'r', renderRevertScript({ id: 'r', backups: [], reload: [['false'], ['sh', '-c', 'exit 3']], stateDir: dir, unitDir: path.join(dir, 'units') }));
    const r = await sh([script, 'now']);
    assert.equal(r.code, 1);
    const result = await fs.readFile(path.join(dir, 'revert/r.result'), 'utf8');
    assert.match(result, /'false' exited with 1/);
    assert.match(result, /'sh -c exit 3' exited with 3/);
  });

  it('runs its cleanup in every mode, boot too, before the reloads; a failing cleanup does not fail the revert', async (t) => {
    const dir = await tempDir(t, 'pve-baseline-revert-');
    const keys = path.join(dir, 'authorized_keys');
    const order = path.join(dir, 'order');
    for (const mode of ['now', 'boot', 'files']) {
      await fs.writeFile(keys, 'ssh-ed25519 AAAA alice@laptop\nfrom="192.0.2.10",no-pty ssh-ed25519 BBBB pve-baseline-probe\n', { mode: 0o600 });
      await fs.rm(order, { force: true });
      const script = await install(
        dir,
        `c-${mode}`,
        renderRevertScript({
          id: `c-${mode}`,
          backups: [],
          cleanup: [['sed', '-i', '-e', '/ pve-baseline-probe$/d', keys], ['sh', '-c', `echo cleanup >> '${order}'`], ['false']],
          reload: [['sh', '-c', `echo reload >> '${order}'`]],
          stateDir: dir,
          unitDir: path.join(dir, 'units'),
        }),
      );
      // At boot the revert acts only on a pending change.
      const p = revertPaths(dir, `c-${mode}`);
      await fs.mkdir(p.pendingDir, { recursive: true });
      await fs.writeFile(p.marker, `c-${mode}\n`);
      const r = await sh([script, mode]);
      assert.equal(r.code, 0, `${mode}: ${r.out}`);
      assert.equal(await fs.readFile(keys, 'utf8'), 'ssh-ed25519 AAAA alice@laptop\n', `${mode}: the probe line is gone, the rest byte for byte`);
      assert.equal(modeOf(await fs.stat(keys)).toString(8), '600', `${mode}: mode kept`);
      assert.equal(await fs.readFile(order, 'utf8'), mode === 'now' ? 'cleanup\nreload\n' : 'cleanup\n', `${mode}: cleanup first, reload only when something was activated and services run`);
      assert.match(r.out, /'false' exited with 1 \(not a failure of the revert\)/);
    }
  });

  it('refuses bad ids and incomplete records', () => {
    assert.throws(() => renderRevertScript({ id: '../x', backups: [], reload: [], stateDir: '/s' }));
    assert.throws(() => renderRevertScript({ id: 'a b', backups: [], reload: [], stateDir: '/s' }));
    assert.throws(() => renderRevertScript({ id: 'x', backups: [{ path: '/a', existed: true, takenAt: '' }], reload: [], stateDir: '/s' }));
    assert.throws(() => renderBootUnit("/var/lib/it's"));
  });
});

describe('the boot hook', () => {
  it('runs every pending script before the services start, without reloading them', async (t) => {
    const f = await fixture(t, 'boot-1');
    await markPending(f);
    const runner = revertPaths(f.state, f.id).bootRunner;
    await fs.writeFile(runner, renderBootRunner(f.state));
    // the boot hook finds the reverts next to itself
    // an interrupted one (claimed, not finished) is finished too
    const g = await fixture(t, 'boot-2', ['other.conf']);
    await fs.cp(path.join(g.state, 'backups'), path.join(f.state, 'backups'), { recursive: true });
    await install(f.state, g.id, renderRevertScript({ id: g.id, backups: g.records, reload: [['touch', g.reloaded]], stateDir: f.state, unitDir: path.join(f.dir, 'units') }));
    await fs.writeFile(revertPaths(f.state, g.id).firing, '');
    const r = await sh([runner]);
    assert.equal(r.code, 0, r.out);
    await assertRestored(f);
    await assertRestored(g);
    assert.equal(await exists(f.reloaded), false, 'no reload at boot');
    assert.match(r.out, /at boot: not running 'touch/);
    assert.deepEqual(await fs.readdir(revertPaths(f.state, f.id).pendingDir), []);
    assert.match(await fs.readFile(revertPaths(f.state, f.id).result, 'utf8'), /^reverted at .* \(boot\)/);
  });

  it('on a Proxmox node, leaves the reverts of /etc/pve to a second run queued after pve-cluster (systemd-run), and that run does only those; if it cannot be queued, reverts them at once', async (t) => {
    const f = await fixture(t, 'boot-pve');
    await markPending(f);
    // f stands for a revert of /etc/pve files (its data says so), g for one of sshd's.
    const data = path.join(revertPaths(f.state, f.id).dir, `${f.id}.data`);
    await fs.writeFile(data, (await fs.readFile(data, 'utf8')).replace("NEEDS_CLUSTER_FS='0'", "NEEDS_CLUSTER_FS='1'"));
    const g = await fixture(t, 'boot-ssh', ['other.conf']);
    await fs.cp(path.join(g.state, 'backups'), path.join(f.state, 'backups'), { recursive: true });
    await install(f.state, g.id, renderRevertScript({ id: g.id, backups: g.records, reload: [], stateDir: f.state, unitDir: path.join(f.dir, 'units') }));
    await fs.writeFile(revertPaths(f.state, g.id).marker, `${g.id}\n`);
    const runner = revertPaths(f.state, f.id).bootRunner;
    await fs.writeFile(runner, renderBootRunner(f.state));
    const clusterUnit = path.join(f.dir, 'pve-cluster.service');
    await fs.writeFile(clusterUnit, '');
    const queued = path.join(f.dir, 'queued');
    const fakeRun = path.join(f.dir, 'systemd-run');
    await fs.writeFile(fakeRun, `#!/bin/sh\nprintf '%s\\n' "$@" > '${queued}'\n`, { mode: 0o755 });
    const env = { PVE_BASELINE_CLUSTER_UNITS: `/nonexistent ${clusterUnit}`, PVE_BASELINE_SYSTEMD_RUN: fakeRun };

    const early = await sh([runner], env);
    assert.equal(early.code, 0, early.out);
    await assertRestored(g);
    await assert.rejects(assertRestored(f), 'the /etc/pve revert waits for pve-cluster');
    const args = (await fs.readFile(queued, 'utf8')).trim().split('\n');
    assert.deepEqual(args.slice(0, 3), ['--no-block', '--quiet', '--unit=pve-baseline-revert-cluster-fs']);
    for (const p of ['--property=DefaultDependencies=no', '--property=After=pve-cluster.service', '--property=Before=pve-firewall.service', '--property=Before=pvedaemon.service', '--property=Before=pveproxy.service', '--property=Before=ssh.service']) assert.ok(args.includes(p), p);
    assert.deepEqual(args.slice(-3), ['/bin/sh', runner, 'cluster']);

    const cluster = await sh([runner, 'cluster'], env);
    assert.equal(cluster.code, 0, cluster.out);
    await assertRestored(f);

    // systemd-run missing: the /etc/pve revert runs at once rather than never.
    const h = await fixture(t, 'boot-pve-2');
    await markPending(h);
    const hData = path.join(revertPaths(h.state, h.id).dir, `${h.id}.data`);
    await fs.writeFile(hData, (await fs.readFile(hData, 'utf8')).replace("NEEDS_CLUSTER_FS='0'", "NEEDS_CLUSTER_FS='1'"));
    const hRunner = revertPaths(h.state, h.id).bootRunner;
    await fs.writeFile(hRunner, renderBootRunner(h.state));
    const fallback = await sh([hRunner], { PVE_BASELINE_CLUSTER_UNITS: clusterUnit, PVE_BASELINE_SYSTEMD_RUN: '/nonexistent/systemd-run' });
    assert.match(fallback.out, /could not queue the reverts of \/etc\/pve after pve-cluster; reverting them now/);
    await assertRestored(h);
  });

  it('marks the reverts that touch /etc/pve in their data', () => {
    const pve = renderRevertScript({ id: 'fw', backups: [{ path: '/etc/pve/firewall/cluster.fw', existed: false, takenAt: '2026-12-03T00:00:00Z' }], reload: [], stateDir: '/s' });
    const ssh = renderRevertScript({ id: 'ssh', backups: [{ path: '/etc/ssh/sshd_config.d/00-pve-baseline.conf', existed: false, takenAt: '2026-12-03T00:00:00Z' }], reload: [], stateDir: '/s' });
    assert.match(pve, /^NEEDS_CLUSTER_FS='1'$/m);
    assert.match(ssh, /^NEEDS_CLUSTER_FS='0'$/m);
  });

  it('is a oneshot ordered before sshd, wanted by multi-user.target', () => {
    const unit = renderBootUnit('/var/lib/pve-baseline');
    assert.match(unit, /^Type=oneshot$/m);
    assert.match(unit, /^Before=.*\bssh\.service\b/m);
    assert.match(unit, /^After=local-fs\.target$/m);
    assert.match(unit, /^Before=.*\bssh\.socket\b/m);
    // before ssh.socket, which is before sockets.target and basic.target: default dependencies would make a cycle
    assert.match(unit, /^DefaultDependencies=no$/m);
    assert.match(unit, /^Conflicts=shutdown\.target$/m);
    assert.match(unit, /^WantedBy=multi-user\.target$/m);
    assert.match(unit, /^ExecStart=\/bin\/sh \/var\/lib\/pve-baseline\/revert\/at-boot\.sh$/m);
  });
});

/** LocalExec, with systemd-run and systemctl recorded and answered (or missing). */
function fakeSystemd(opts: { systemdRun: 'ok' | 'missing' | 'fails' }): Exec & { calls: string[][] } {
  const local = new LocalExec();
  const calls: string[][] = [];
  return {
    calls,
    async run(argv, options) {
      calls.push([...argv]);
      const ok = (exitCode = 0, stderr = ''): ExecResult => ({ argv: [...argv], exitCode, stdout: '', stderr });
      if (argv[0] === 'systemd-run') {
        if (opts.systemdRun === 'missing') return { ...ok(127, 'systemd-run: command not found'), notFound: true };
        return opts.systemdRun === 'ok' ? ok() : ok(1, 'System has not been booted with systemd');
      }
      if (argv[0] === 'systemctl') return ok();
      return local.run(argv, options);
    },
  };
}

describe('armRevert / disarmRevert / revertNow / pendingReverts', () => {
  it('arms with systemd-run, writes the script 0700, the marker and the boot hook; disarm keeps the change', async (t) => {
    const f = await fixture(t, 'arm-1', undefined, 'state', false); // a unit file takes plain paths only
    const exec = fakeSystemd({ systemdRun: 'ok' });
    const files = new LocalFiles();
    const unitDir = path.join(f.dir, 'units');
    await fs.mkdir(path.join(unitDir, 'multi-user.target.wants'), { recursive: true }); // as on every systemd node
    const script = f.data;
    const t0 = Date.now();
    const h = await armRevert(exec, files, { id: f.id, script, seconds: 42, stateDir: f.state, unitDir });
    assert.equal(h.armedWith, 'systemd-run');
    assert.equal(h.bootHook, 'symlink', h.notes.join('\n'));
    assert.ok(h.deadline >= t0 + 42_000 && h.deadline <= Date.now() + 42_000);
    const runCall = exec.calls.find((c) => c[0] === 'systemd-run')!;
    assert.ok(runCall.includes('--unit=pve-baseline-revert-arm-1'));
    assert.ok(runCall.includes('--on-active=42s'));
    assert.ok(runCall.includes('--timer-property=AccuracySec=1s'));
    assert.deepEqual(runCall.slice(-2), ['/bin/sh', f.script]);
    const p = revertPaths(f.state, f.id);
    assert.equal(modeOf(await fs.stat(p.script)), 0o700);
    assert.ok(await exists(p.marker));
    assert.equal(await fs.readlink(path.join(unitDir, 'multi-user.target.wants', BOOT_UNIT)), path.join(unitDir, BOOT_UNIT));
    const pending = await pendingReverts(files, { stateDir: f.state, now: () => t0 });
    assert.equal(pending.length, 1);
    assert.equal(pending[0]!.id, f.id);
    assert.equal(pending[0]!.state, 'pending');
    assert.equal(pending[0]!.secondsLeft, 42);

    assert.deepEqual(await disarmRevert(exec, files, f.id, { stateDir: f.state, unitDir }), { disarmed: true });
    assert.deepEqual(exec.calls.filter((c) => c[0] === 'systemctl'), [], 'a temp unit dir is not the node: no systemctl at all');
    assert.equal(await exists(p.marker), false);
    assert.equal(await exists(p.script), false);
    assert.match(await fs.readFile(p.result, 'utf8'), /^disarmed at /);
    assert.equal(await exists(path.join(unitDir, 'multi-user.target.wants', BOOT_UNIT)), false, 'boot hook off when nothing is pending');
    assert.deepEqual(await pendingReverts(files, { stateDir: f.state }), []);
    // idempotent
    assert.deepEqual(await disarmRevert(exec, files, f.id, { stateDir: f.state, unitDir }), { disarmed: true });
    for (const file of f.before.keys()) assert.equal(await fs.readFile(file, 'utf8'), 'PasswordAuthentication no\n');
  });

  it('disarm after the revert fired says so (the journal stays truthful)', async (t) => {
    const f = await fixture(t, 'arm-2', undefined, undefined, false);
    const exec = fakeSystemd({ systemdRun: 'ok' });
    const files = new LocalFiles();
    const unitDir = path.join(f.dir, 'units');
    await armRevert(exec, files, { id: f.id, script: f.data, seconds: 5, stateDir: f.state, unitDir });
    assert.equal((await sh([f.script])).code, 0); // the timer fires first
    const d = await disarmRevert(exec, files, f.id, { stateDir: f.state, unitDir });
    assert.equal(d.disarmed, false);
    assert.match(d.reverted!, /^reverted at /);
    await assertRestored(f);
    assert.equal(await exists(path.join(unitDir, 'multi-user.target.wants', BOOT_UNIT)), false, 'the script took the boot hook down');
  });

  it('revertNow reverts at once and returns the result file', async (t) => {
    const f = await fixture(t, 'now-1', undefined, undefined, false);
    const exec = fakeSystemd({ systemdRun: 'ok' });
    const files = new LocalFiles();
    await armRevert(exec, files, { id: f.id, script: f.data, seconds: 60, stateDir: f.state, unitDir: path.join(f.dir, 'units') });
    const r = await revertNow(exec, f.id, { stateDir: f.state, files });
    assert.equal(r.ok, true, r.output);
    assert.match(r.result, /^reverted at .* \(now\)$/);
    await assertRestored(f);
    assert.deepEqual(await pendingReverts(files, { stateDir: f.state }), []);
  });

  it('falls back to a detached setsid sleeper without systemd-run, which fires on its own', async (t) => {
    const f = await fixture(t, 'sleep-1', undefined, undefined, false);
    const exec = fakeSystemd({ systemdRun: 'missing' });
    const files = new LocalFiles();
    const started = Date.now();
    const h = await armRevert(exec, files, { id: f.id, script: f.data, seconds: 1, stateDir: f.state, unitDir: path.join(f.dir, 'units') });
    assert.ok(Date.now() - started < 900, 'armRevert does not wait for the sleeper');
    assert.equal(h.armedWith, 'setsid');
    assert.match(h.notes.join('\n'), /systemd-run is not available/);
    const deadline = h.deadline;
    while (!(await exists(revertPaths(f.state, f.id).result)) && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 50));
    const latency = Date.now() - deadline;
    assert.ok(latency < 5000, `reverted ${latency} ms after the deadline`);
    await assertRestored(f);
    assert.ok(await exists(f.reloaded));
  });

  it('a failing systemd-run also falls back', async (t) => {
    const f = await fixture(t, 'sleep-2', undefined, undefined, false);
    const exec = fakeSystemd({ systemdRun: 'fails' });
    const files = new LocalFiles();
    const h = await armRevert(exec, files, { id: f.id, script: f.data, seconds: 2, stateDir: f.state, unitDir: path.join(f.dir, 'units') });
    assert.equal(h.armedWith, 'setsid');
    assert.match(h.notes.join('\n'), /systemd-run failed \(System has not been booted with systemd\)/);
    // disarm: the sleeper finds no marker when it wakes
    assert.equal((await disarmRevert(exec, files, f.id, { stateDir: f.state, unitDir: path.join(f.dir, 'units') })).disarmed, true);
  });
});

describe('links in directories a user can change (defect 11)', () => {
  /** A home with ~/.ssh owned by uid 1000, reachable by that user, and the state dir for the revert. */
  async function home(t: { after(fn: () => unknown): void }) {
    const dir = await tempDir(t, 'pve-baseline-revert-home-');
    await fs.chmod(dir, 0o755);
    const ssh = path.join(dir, 'home', 'alice', '.ssh');
    await fs.mkdir(ssh, { recursive: true });
    await fs.chown(path.join(dir, 'home', 'alice'), 1000, 1000);
    await fs.chown(ssh, 1000, 1000);
    await fs.chmod(ssh, 0o700);
    const victim = path.join(dir, 'etc', 'shadow');
    await fs.mkdir(path.dirname(victim), { recursive: true });
    await fs.writeFile(victim, 'root:$y$secret:1::::::\n', { mode: 0o640 });
    const state = path.join(dir, 'state');
    return { dir, ssh, victim, state, store: new BackupStore(path.join(state, 'backups')) };
  }

  it('restoring "did not exist" removes a planted link itself, never its target', async (t) => {
    const h = await home(t);
    const file = path.join(h.ssh, 'authorized_keys2');
    const rec = await h.store.backup('l1', file);
    assert.equal(rec.existed, false);
    await fs.symlink(h.victim, file);
    await fs.lchown(file, 1000, 1000);
    // and the same in a root-only directory: the link goes, its target stays
    const rootFile = path.join(h.dir, 'etc', 'new.conf');
    const rootRec = await h.store.backup('l1', rootFile);
    await fs.symlink(h.victim, rootFile);
    const script = await install(h.state, 'l1', renderRevertScript({ id: 'l1', backups: [rec, rootRec], reload: [], stateDir: h.state, unitDir: path.join(h.dir, 'units') }));
    const r = await sh([script, 'now']);
    assert.equal(r.code, 0, r.out);
    assert.equal(await exists(file), false);
    assert.equal(await exists(rootFile), false);
    assert.equal(await fs.readFile(h.victim, 'utf8'), 'root:$y$secret:1::::::\n', 'the target is untouched');
  });

  it("restoring the admin's file replaces a link planted in ~/.ssh and never writes, chowns or chmods its target", async (t) => {
    const h = await home(t);
    const file = path.join(h.ssh, 'authorized_keys');
    await fs.writeFile(file, 'ssh-ed25519 AAAA alice@laptop\n', { mode: 0o600 });
    await fs.chown(file, 1000, 1000);
    const rec = await h.store.backup('l2', file);
    // the user swaps the file for a link to a root-only file
    await fs.rm(file);
    await fs.symlink(h.victim, file);
    await fs.lchown(file, 1000, 1000);
    const script = await install(h.state, 'l2', renderRevertScript({ id: 'l2', backups: [rec], reload: [], stateDir: h.state, unitDir: path.join(h.dir, 'units') }));
    const r = await sh([script, 'now']);
    assert.equal(r.code, 0, r.out);
    const st = await fs.lstat(file);
    assert.equal(st.isFile(), true, 'the link itself was replaced by the file');
    assert.deepEqual([st.uid, st.gid, modeOf(st)], [1000, 1000, 0o600]);
    assert.equal(await fs.readFile(file, 'utf8'), 'ssh-ed25519 AAAA alice@laptop\n');
    const victim = await fs.stat(h.victim);
    assert.equal(await fs.readFile(h.victim, 'utf8'), 'root:$y$secret:1::::::\n');
    assert.deepEqual([victim.uid, modeOf(victim)], [0, 0o640], 'the target keeps its owner and mode');
    const left = await fs.readdir(h.ssh);
    assert.deepEqual(left, ['authorized_keys'], 'no temp file left');
  });

  it("a root-owned link inside a user's directory is not written through either", async (t) => {
    const h = await home(t);
    const file = path.join(h.ssh, 'authorized_keys');
    await fs.writeFile(file, 'old\n', { mode: 0o600 });
    await fs.chown(file, 1000, 1000);
    const rec = await h.store.backup('l3', file);
    await fs.rm(file);
    await fs.symlink(h.victim, file); // owned by root: the user could still have renamed it into place
    const script = await install(h.state, 'l3', renderRevertScript({ id: 'l3', backups: [rec], reload: [], stateDir: h.state, unitDir: path.join(h.dir, 'units') }));
    assert.equal((await sh([script, 'now'])).code, 0);
    assert.equal((await fs.lstat(file)).isFile(), true);
    assert.equal(await fs.readFile(h.victim, 'utf8'), 'root:$y$secret:1::::::\n');
  });

  it("refuses to put back, in a user's directory, a file that belongs to someone else, and says so", async (t) => {
    const h = await home(t);
    const file = path.join(h.ssh, 'root-owned');
    await fs.writeFile(file, 'old\n', { mode: 0o600 });
    const rec = await h.store.backup('l4', file);
    await fs.writeFile(file, 'new\n');
    const script = await install(h.state, 'l4', renderRevertScript({ id: 'l4', backups: [rec], reload: [], stateDir: h.state, unitDir: path.join(h.dir, 'units') }));
    const r = await sh([script, 'now']);
    assert.equal(r.code, 1);
    assert.match(await fs.readFile(revertPaths(h.state, 'l4').result, 'utf8'), /can be changed by uid 1000, and the file belongs to uid 0; not restored \(put .* back by hand\)/);
    assert.equal(await fs.readFile(file, 'utf8'), 'new\n');
  });

  it('reads its data only when root owns it and nobody else can write it', async (t) => {
    const dir = await tempDir(t, 'pve-baseline-revert-');
    const script = await install(dir, 'd1', renderRevertScript({ id: 'd1', backups: [], reload: [['touch', path.join(dir, 'ran')]], stateDir: dir, unitDir: path.join(dir, 'units') }));
    const data = revertPaths(dir, 'd1').data;
    await fs.chmod(data, 0o602);
    let r = await sh([script, 'now']);
    assert.equal(r.code, 1);
    assert.match(r.out, /is writable by others; not read/);
    await fs.chmod(data, 0o600);
    await fs.chown(data, 1000, 1000);
    r = await sh([script, 'now']);
    assert.match(r.out, /belongs to another account; not read/);
    assert.equal(await exists(path.join(dir, 'ran')), false);
  });
});

describe('the host systemd units (defect 17)', () => {
  it('a revert for a temp unit dir never runs systemctl; one for the node does, and only there', async (t) => {
    const dir = await tempDir(t, 'pve-baseline-revert-');
    const temp = renderRevertScript({ id: 'u1', backups: [], reload: [], stateDir: dir, unitDir: path.join(dir, 'units') });
    assert.match(temp, /^SYSTEMCTL='no'$/m);
    assert.match(renderRevertScript({ id: 'u1', backups: [], reload: [], stateDir: dir }), /^SYSTEMCTL='yes'$/m);
    assert.match(renderRevertScript({ id: 'u1', backups: [], reload: [], stateDir: dir, manageUnits: false }), /^SYSTEMCTL='no'$/m);
    // Run for real: every mode, pending, disarming at the end; the fake systemctl must stay silent (sh() checks).
    for (const mode of ['timer', 'boot', 'now', 'files']) {
      const id = `u-${mode}`;
      const script = await install(dir, id, renderRevertScript({ id, backups: [], reload: [], stateDir: dir, unitDir: path.join(dir, 'units') }));
      const p = revertPaths(dir, id);
      await fs.mkdir(p.pendingDir, { recursive: true });
      await fs.writeFile(p.marker, '');
      assert.equal((await sh([script, mode])).code, 0);
    }
    // The fake does record: data that says it is the node's own unit dir makes the program call it.
    const id = 'u-node';
    const wants = path.join(dir, 'units', 'multi-user.target.wants', BOOT_UNIT);
    await fs.mkdir(path.dirname(wants), { recursive: true });
    await fs.writeFile(wants, '');
    const nodeLike = renderRevertScript({ id, backups: [], reload: [], stateDir: dir, unitDir: path.join(dir, 'units') }).replace("SYSTEMCTL='no'", "SYSTEMCTL='yes'");
    const script = await install(dir, id, nodeLike);
    const before = systemctlCalls().length;
    const r = await run('/bin/sh', [script, 'now']).then((x) => x.stdout);
    const calls = systemctlCalls().slice(before);
    rmSync(systemctlLog, { force: true }); // these were to the fake, on purpose
    assert.deepEqual(calls, [`stop pve-baseline-revert-${id}.timer`, `--no-reload disable ${BOOT_UNIT}`], r);
    assert.equal(await exists(wants), false);
  });
});
