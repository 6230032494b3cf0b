/**
 * The sshd step's probe key (defect 16) and its cleanup by the revert
 * (defect 11): the OpenSSH probe keeps the private key only inside the state
 * directory's 0700 area while the client runs, what a killed run left there
 * goes at the next probe and with the revert; the probe line is `restrict`ed;
 * the revert edits the admin's authorized_keys as the admin, never as root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { program, renderRevertScript, revertPaths } from '../../src/engine/revert/index.ts';
import { PROBE_COMMENT, probeKeyDir, probeKeyLine, probeWithOpenSsh } from '../../src/ssh/prober.ts';
import type { Exec } from '../../src/system/exec.ts';
import { sshdHardeningStep } from '../../steps/sshd-hardening.ts';
import { modeOf, tempDir } from '../fixtures/temp.ts';

const run = promisify(execFile);
const EXPECT = { kex: ['sntrup761x25519-sha512'], ciphers: ['aes256-gcm@openssh.com'], macs: ['hmac-sha2-512-etm@openssh.com'], hostKeys: ['ssh-ed25519'] };

test('the probe line carries restrict, from= and the forced command', () => {
  const line = probeKeyLine('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBB x', '192.0.2.10');
  assert.match(line, /^from="192\.0\.2\.10",restrict,command="\/bin\/true" ssh-ed25519 \S+ pve-baseline-probe$/);
});

test('the OpenSSH probe keeps its key in the state dir (0700) only while ssh runs; a killed run leaves nothing for long', async (t) => {
  const state = await tempDir(t, 'pve-baseline-state-');
  const keyDir = probeKeyDir(state);
  assert.equal(keyDir, path.join(state, 'probe-keys'));
  // What a run killed during the probe left behind.
  await fs.mkdir(path.join(keyDir, 'probe-old'), { recursive: true, mode: 0o700 });
  await fs.writeFile(path.join(keyDir, 'probe-old', 'id_ed25519'), 'OLD PRIVATE KEY\n', { mode: 0o600 });
  const seen: { file: string; mode: number; dirMode: number; content: string; left: string[] }[] = [];
  const exec: Exec = {
    async run(argv) {
      const file = argv[argv.indexOf('-i') + 1]!;
      const st = await fs.stat(file);
      seen.push({ file, mode: modeOf(st), dirMode: modeOf(await fs.stat(keyDir)), content: await fs.readFile(file, 'utf8'), left: await fs.readdir(keyDir) });
      return { argv: [...argv], exitCode: 127, stdout: '', stderr: 'ssh: not found', notFound: true };
    },
  };
  const r = await probeWithOpenSsh(exec, { host: '192.0.2.10', admin: 'alice', privateKey: 'NEW PRIVATE KEY', expect: EXPECT, keyDir });
  assert.equal(r.outcome, 'unreachable');
  assert.equal(seen.length, 1);
  assert.ok(seen[0]!.file.startsWith(`${keyDir}/`), seen[0]!.file);
  assert.deepEqual([seen[0]!.mode, seen[0]!.dirMode, seen[0]!.content], [0o600, 0o700, 'NEW PRIVATE KEY\n']);
  assert.equal(seen[0]!.left.includes('probe-old'), false, "the killed run's key went first");
  assert.deepEqual(await fs.readdir(keyDir), [], 'nothing left once ssh is done');
});

test("the revert's cleanup removes the probe keys, and edits the admin's authorized_keys as the admin, not as root", async (t) => {
  const dir = await tempDir(t, 'pve-baseline-cleanup-');
  await fs.chmod(dir, 0o755);
  const state = path.join(dir, 'state');
  const previous = process.env.PVE_BASELINE_STATE_DIR;
  process.env.PVE_BASELINE_STATE_DIR = state;
  t.after(() => {
    if (previous === undefined) delete process.env.PVE_BASELINE_STATE_DIR;
    else process.env.PVE_BASELINE_STATE_DIR = previous;
  });
  const home = path.join(dir, 'home', 'alice');
  await fs.mkdir(home, { recursive: true });
  await fs.chown(home, 1000, 1000);
  // The admin made ~/.ssh a link to root's own .ssh: root's sed -i would edit root's file through it.
  const rootSsh = path.join(dir, 'root', '.ssh');
  await fs.mkdir(rootSsh, { recursive: true, mode: 0o700 });
  const rootKeys = path.join(rootSsh, 'authorized_keys');
  const rootContent = `ssh-ed25519 AAAAroot root@admin\nssh-ed25519 AAAAother x ${PROBE_COMMENT}\n`;
  await fs.writeFile(rootKeys, rootContent, { mode: 0o600 });
  await fs.symlink(rootSsh, path.join(home, '.ssh'));
  await fs.lchown(path.join(home, '.ssh'), 1000, 1000);
  await fs.mkdir(path.join(probeKeyDir(), 'probe-x'), { recursive: true });
  await fs.writeFile(path.join(probeKeyDir(), 'probe-x', 'id_ed25519'), 'PRIVATE\n');

  const facts = { admin: { name: 'alice', uid: 1000, gid: 1000, gecos: '', home, shell: '/bin/bash' } };
  const cleanup = sshdHardeningStep.guard!.cleanup!(facts as never);
  assert.deepEqual(cleanup[0]!.slice(0, 5), ['setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', '--']);
  assert.deepEqual(cleanup.at(-1), ['rm', '-rf', '--', probeKeyDir()]);

  const id = 'cleanup-1';
  const p = revertPaths(state, id);
  await fs.mkdir(p.dir, { recursive: true });
  await fs.writeFile(p.script, program('revert.sh'), { mode: 0o700 });
  await fs.writeFile(p.data, renderRevertScript({ id, backups: [], reload: [], cleanup, stateDir: state, unitDir: path.join(dir, 'units') }), { mode: 0o600 });
  const r = await run('/bin/sh', [p.script, 'now']);
  assert.match(r.stdout, /exited with \d+ \(not a failure of the revert\)/, 'the sed as alice was refused');
  assert.equal(await fs.readFile(rootKeys, 'utf8'), rootContent, "root's file is untouched");
  await assert.rejects(fs.stat(probeKeyDir()), { code: 'ENOENT' });
});
