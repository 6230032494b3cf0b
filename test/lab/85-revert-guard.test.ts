/**
 * The revert the node owns, on a real systemd node: a transient timer fires
 * the plain-sh script and sshd is reloaded; a disarmed revert never fires;
 * an unconfirmed change is reverted at boot, before sshd starts; without
 * systemd-run a detached setsid sleeper does it. Nothing of this process is
 * involved once armRevert returned (as if the wizard were SIGKILLed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { labOrSkip, sh } from './helpers.ts';
import type { Lab } from './lab.ts';
import type { Exec, ExecResult } from '../../src/system/exec.ts';
import type { BackupRecord, Files } from '../../src/system/files.ts';
import { armRevert, BOOT_UNIT, disarmRevert, pendingReverts, renderRevertScript, revertPaths, shellQuote } from '../../src/engine/revert/index.ts';

const STATE = '/var/lib/pve-baseline-test';
const SSHD = '/etc/ssh/sshd_config';
const DROP_IN = '/etc/ssh/sshd_config.d/10-pve-baseline-revert-test.conf';

/** Exec in the node; systemd-run can be made "not installed". */
function nodeExec(lab: Lab, opts: { noSystemdRun?: boolean } = {}): Exec {
  return {
    async run(argv, options = {}) {
      if (opts.noSystemdRun && argv[0] === 'systemd-run') {
        return { argv: [...argv], exitCode: 127, stdout: '', stderr: 'systemd-run: command not found', notFound: true };
      }
      const input = options.input === undefined ? undefined : typeof options.input === 'string' ? options.input : options.input.reveal();
      const r = await lab.exec(argv, { ...(input !== undefined ? { input } : {}), ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
      const result: ExecResult = { argv: [...argv], exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
      return r.exitCode === 127 ? { ...result, notFound: true } : result;
    },
  };
}

/** Exec over real SSH logins as root (each command its own session, closed when it ends). */
function sshExec(lab: Lab, opts: { noSystemdRun?: boolean } = {}): Exec {
  return {
    async run(argv, options = {}) {
      if (opts.noSystemdRun && argv[0] === 'systemd-run') {
        return { argv: [...argv], exitCode: 127, stdout: '', stderr: 'systemd-run: command not found', notFound: true };
      }
      const input = options.input === undefined ? undefined : typeof options.input === 'string' ? options.input : options.input.reveal();
      const r = await lab.ssh({ user: 'root', password: lab.rootPassword, ...(input !== undefined ? { input } : {}) }, argv.map(shellQuote).join(' '));
      return { argv: [...argv], exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

/** Files in the node, through exec (no Node in the node needed). */
function nodeFiles(lab: Lab): Files {
  return {
    async read(file) {
      const r = await lab.exec(['cat', '--', file]);
      return r.exitCode === 0 ? r.stdout : null;
    },
    async meta(file) {
      const r = await lab.exec(['stat', '-L', '-c', '%a %u %g', '--', file]);
      if (r.exitCode !== 0) return null;
      const [mode, uid, gid] = r.stdout.trim().split(' ');
      const link = (await lab.exec(['test', '-L', file])).exitCode === 0;
      return { mode: parseInt(mode!, 8), uid: Number(uid), gid: Number(gid), isSymlink: link };
    },
    async write(file, content, options = {}) {
      const mode = (options.mode ?? 0o644).toString(8);
      const r = await lab.exec(['sh', '-c', 'mkdir -p -- "${1%/*}" && t="$1.tmp.$$" && cat > "$t" && chmod "$2" "$t" && mv -f -- "$t" "$1"', 'write', file, mode], {
        input: content,
      });
      if (r.exitCode !== 0) throw new Error(`write ${file}: ${r.stderr}`);
    },
    async remove(file) {
      await lab.exec(['rm', '-f', '--', file]);
    },
    async rename(from, to) {
      const r = await lab.exec(['mv', '-T', '--', from, to]);
      if (r.exitCode !== 0) {
        throw Object.assign(new Error(`rename ${from}: ${r.stderr}`), { code: (await lab.exec(['test', '-e', from])).exitCode !== 0 ? 'ENOENT' : 'EIO' });
      }
    },
    async symlink(target, file) {
      const r = await lab.exec(['ln', '-s', '--', target, file]);
      if (r.exitCode !== 0) throw new Error(`symlink ${file}: ${r.stderr}`);
    },
    async writable(file) {
      return (await lab.exec(['test', '-w', file])).exitCode === 0;
    },
    async list(dir) {
      const r = await lab.exec(['ls', '-1A', '--', dir]);
      return r.exitCode === 0 ? r.stdout.split('\n').filter(Boolean).sort() : [];
    },
  };
}

/** A backup taken in the node, the way BackupStore takes one (copy 0600, sha256, mode, owner). */
async function nodeBackup(lab: Lab, set: string, file: string): Promise<BackupRecord> {
  const takenAt = new Date().toISOString();
  if ((await lab.exec(['test', '-e', file])).exitCode !== 0) return { path: file, existed: false, takenAt };
  const copy = path.join(STATE, 'backups', set, file);
  const out = await lab.exec([
    'sh',
    '-c',
    'mkdir -p -m 0700 -- "${2%/*}" && cp -- "$1" "$2" && chmod 0600 "$2" && sha256sum < "$1" && stat -L -c "%a %u %g" -- "$1"',
    'backup',
    file,
    copy,
  ]);
  assert.equal(out.exitCode, 0, out.stderr);
  const [shaLine, statLine] = out.stdout.trim().split('\n');
  const [mode, uid, gid] = statLine!.split(' ');
  return { path: file, existed: true, copy, sha256: shaLine!.split(' ')[0]!, mode: parseInt(mode!, 8), uid: Number(uid), gid: Number(gid), takenAt };
}

async function hostSha(lab: Lab, file: string): Promise<string | null> {
  try {
    return createHash('sha256').update(await readFile(path.join(lab.rootDir, file))).digest('hex');
  } catch {
    return null;
  }
}

async function restored(lab: Lab, records: BackupRecord[]): Promise<boolean> {
  for (const r of records) {
    const sha = await hostSha(lab, r.path);
    if (r.existed ? sha !== r.sha256 : sha !== null) return false;
  }
  return true;
}

/** Back up sshd_config and the (absent) drop-in, change both, and arm a revert that reloads ssh. */
async function changeUnderRevert(lab: Lab, id: string, seconds: number, exec: Exec = nodeExec(lab)) {
  const records = [await nodeBackup(lab, id, SSHD), await nodeBackup(lab, id, DROP_IN)];
  await sh(lab, `echo '# changed by ${id}' >> ${SSHD} && chmod 0600 ${SSHD} && echo 'MaxAuthTries 4' > ${DROP_IN}`);
  const script = renderRevertScript({ id, backups: records, reload: [['systemctl', 'reload', 'ssh']], stateDir: STATE });
  const handle = await armRevert(exec, nodeFiles(lab), { id, script, seconds, stateDir: STATE });
  await sh(lab, 'sshd -t && systemctl reload ssh');
  assert.match(await sh(lab, 'sshd -T'), /^maxauthtries 4$/m);
  return { records, handle };
}

async function waitRestored(lab: Lab, records: BackupRecord[], deadline: number, label: string): Promise<number> {
  while (!(await restored(lab, records))) {
    assert.ok(Date.now() < deadline + 15_000, `${label}: not restored 15 s after the deadline`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const latency = Date.now() - deadline;
  process.stderr.write(`lab: ${label}: restored ${latency} ms after the deadline\n`);
  return latency;
}

async function assertModeAndOwner(lab: Lab, r: BackupRecord): Promise<void> {
  const [mode, uid, gid] = (await sh(lab, `stat -c '%a %u %g' ${r.path}`)).trim().split(' ');
  assert.deepEqual([parseInt(mode!, 8), Number(uid), Number(gid)], [r.mode, r.uid, r.gid]);
}

const lab = await labOrSkip();

if (lab) {
  await lab.reset();

  test('a transient timer reverts an unconfirmed change within 5 s of the deadline, and reloads sshd', async () => {
    const { records, handle } = await changeUnderRevert(lab, 'lab-timer', 3);
    assert.equal(handle.armedWith, 'systemd-run');
    assert.equal(handle.bootHook, 'enabled');
    assert.equal((await sh(lab, `systemctl is-enabled ${BOOT_UNIT}`)).trim(), 'enabled');
    assert.equal((await sh(lab, 'systemctl is-active pve-baseline-revert-lab-timer.timer')).trim(), 'active');
    // from here on this process does nothing: as if the wizard had been SIGKILLed
    const latency = await waitRestored(lab, records, handle.deadline, 'timer');
    assert.ok(latency < 5000, `reverted ${latency} ms after the deadline`);
    await assertModeAndOwner(lab, records[0]!);
    const p = revertPaths(STATE, 'lab-timer');
    // the result is written after the reload
    let result = '';
    for (let i = 0; i < 100 && !result; i++) {
      result = (await lab.exec(['cat', p.result])).stdout;
      if (!result) await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(result, /^reverted at .* \(timer\)$/m);
    assert.doesNotMatch(await sh(lab, 'sshd -T'), /^maxauthtries 4$/m, 'sshd was reloaded with the old config');
    assert.notEqual((await lab.exec(['test', '-e', p.marker])).exitCode, 0);
    assert.notEqual((await lab.exec(['systemctl', 'is-enabled', BOOT_UNIT])).stdout.trim(), 'enabled');
    assert.match(await sh(lab, 'journalctl -t pve-baseline -b --no-pager -q'), /revert lab-timer: reverted/);
    assert.deepEqual(await pendingReverts(nodeFiles(lab), { stateDir: STATE }), []);
  });

  test('a disarmed revert never fires: the change stays', async () => {
    const { records, handle } = await changeUnderRevert(lab, 'lab-disarm', 3);
    assert.deepEqual(await disarmRevert(nodeExec(lab), nodeFiles(lab), 'lab-disarm', { stateDir: STATE }), { disarmed: true });
    await new Promise((r) => setTimeout(r, handle.deadline - Date.now() + 3000));
    assert.equal(await restored(lab, records), false);
    assert.match(await sh(lab, 'sshd -T'), /^maxauthtries 4$/m);
    assert.match(await sh(lab, `cat ${revertPaths(STATE, 'lab-disarm').result}`), /^disarmed at /);
    assert.notEqual((await lab.exec(['systemctl', 'is-active', 'pve-baseline-revert-lab-disarm.timer'])).stdout.trim(), 'active');
    assert.notEqual((await lab.exec(['systemctl', 'is-enabled', BOOT_UNIT])).stdout.trim(), 'enabled');
    await lab.reset();
  });

  test('a reboot inside the window reverts at boot, before sshd starts', async () => {
    const { records, handle } = await changeUnderRevert(lab, 'lab-boot', 120);
    assert.equal(handle.bootHook, 'enabled');
    const seconds = await lab.reboot();
    process.stderr.write(`lab: reboot took ${seconds.toFixed(2)} s\n`);
    assert.ok(Date.now() < handle.deadline, 'the reboot was inside the window');
    assert.ok(await restored(lab, records), 'restored at boot');
    await assertModeAndOwner(lab, records[0]!);
    const p = revertPaths(STATE, 'lab-boot');
    assert.notEqual((await lab.exec(['test', '-e', p.marker])).exitCode, 0, 'the pending marker is gone');
    assert.match(await sh(lab, `cat ${p.result}`), /^reverted at .* \(boot\)$/m);
    assert.doesNotMatch(await sh(lab, 'sshd -T'), /^maxauthtries 4$/m);
    const prop = async (unit: string, name: string) => Number((await sh(lab, `systemctl show -P ${name} ${unit}`)).trim());
    const hookDone = await prop(BOOT_UNIT, 'ExecMainExitTimestampMonotonic');
    const sshStart = await prop('ssh.service', 'ExecMainStartTimestampMonotonic');
    assert.ok(hookDone > 0 && sshStart > 0 && hookDone <= sshStart, `boot hook done at ${hookDone}, sshd started at ${sshStart}`);
    assert.doesNotMatch(await sh(lab, 'journalctl -b --no-pager -q -p warning'), /ordering cycle/i);
    assert.deepEqual(await pendingReverts(nodeFiles(lab), { stateDir: STATE }), []);
    const r = await lab.ssh({ user: 'root', password: lab.rootPassword }, 'true');
    assert.equal(r.exitCode, 0);
  });

  test('without systemd-run a detached setsid sleeper reverts on its own', async () => {
    const { records, handle } = await changeUnderRevert(lab, 'lab-sleeper', 3, nodeExec(lab, { noSystemdRun: true }));
    assert.equal(handle.armedWith, 'setsid');
    assert.match(handle.notes.join('\n'), /systemd-run is not available/);
    const latency = await waitRestored(lab, records, handle.deadline, 'setsid sleeper');
    assert.ok(latency < 5000, `reverted ${latency} ms after the deadline`);
    await assertModeAndOwner(lab, records[0]!);
  });

  for (const noSystemdRun of [false, true]) {
    test(`armed from an SSH session that then ends (${noSystemdRun ? 'setsid sleeper' : 'systemd-run'}): it still fires`, async () => {
      const id = noSystemdRun ? 'lab-ssh-sleeper' : 'lab-ssh-timer';
      const { records, handle } = await changeUnderRevert(lab, id, 3, sshExec(lab, { noSystemdRun }));
      assert.equal(handle.armedWith, noSystemdRun ? 'setsid' : 'systemd-run');
      // every command above was its own SSH login, closed when it ended; nothing of ours is connected now
      const latency = await waitRestored(lab, records, handle.deadline, `after the SSH session ended (${handle.armedWith})`);
      assert.ok(latency < 5000, `reverted ${latency} ms after the deadline`);
    });
  }

  test('clean up', async () => {
    await lab.reset();
  });
}
