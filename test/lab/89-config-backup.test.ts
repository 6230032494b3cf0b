/**
 * Issue 17 on the lab node: the config backup for real. The node's
 * /etc/pve is backed by a real config.db in WAL mode (the pmxcfs stand-in),
 * the backup host is an SFTP-only OpenSSH server with its own host key
 * (test/lab/README.md), and the workstation opens the archive with the
 * standard age and tar.
 *
 * - The step, unattended: the first backup archived, copied off the node,
 *   read back and drilled; user.cfg read from the database equals the live one.
 * - The archive: 0600, no seeded secret readable in it here or on the backup
 *   host; `age -d` and `tar` open it on the workstation, `sha256sum -c` passes.
 * - A remote copy with one byte changed fails the drill, naming the file; a
 *   host key that is not the pinned one, or one only fetched (not given) in an
 *   answers file, is refused; the backup host unreachable: a clear error, the
 *   local archive kept, `check` reports it.
 * - The timer's service, started as the timer would, records its run and
 *   `check --json` shows it.
 * - The documented restore on a fresh node brings back the admin, the ACLs,
 *   the firewall and the secrets from config.db.
 * Named 89 so it runs before 90-down, like the other lab files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminAnswers, installBundle, labOrSkip, sh, waitUntil } from './helpers.ts';
import type { Lab } from './lab.ts';

const lab = await labOrSkip();
const PASSWORD = 'correct horse battery staple';
/** Seeded secrets: they must not be readable anywhere outside the decrypted archive. */
const TOTP_SECRET = 'JBSWY3DPEHPK3PXPLABSECRETSEED';
const TOKEN_SECRET = '5f0e6f5a-3b6c-4c1e-9d2a-labtokensecret';
const REMOTE_DIR = 'pve-config/pve1';
const STATE = '/var/lib/pve-baseline';

if (lab) {
  const node: Lab = lab;
  const host = node.backupHost;
  const work = mkdtempSync(join(tmpdir(), 'pve-baseline-backup-lab-'));
  const remoteDir = () => join(host.dir, REMOTE_DIR);
  const remoteArchives = () => readdirSync(remoteDir()).filter((n) => n.endsWith('.tar.gz.age')).sort();
  const localArchives = () => readdirSync(join(node.rootDir, STATE.slice(1), 'config-backup/archives')).filter((n) => n.endsWith('.tar.gz.age')).sort();
  const answers = (hostKey: string) =>
    [
      'config-backup:',
      '  destination: sftp',
      `  host: ${host.address}`,
      `  port: ${host.port}`,
      `  user: ${host.user}`,
      `  remote_dir: ${REMOTE_DIR}`,
      `  host_key: "${hostKey}"`,
      '  key_file: /root/.ssh/id_rsa',
      '  recipient: generate',
      '  keep: 3',
      '  schedule: weekly',
      '',
    ].join('\n');
  const applyBackupStep = (file: string) => node.exec(['pve-baseline', 'apply', '--answers', `/root/${file}`, '--yes', '--only', 'config-backup'], { timeoutMs: 300_000 });
  const checkJson = async () => JSON.parse((await node.exec(['pve-baseline', 'check', '--json'], { timeoutMs: 300_000 })).stdout) as { steps: { id: string; status: string; changes: { reason: string }[]; checks?: { label: string; ok: boolean; detail?: string }[] }[] };
  const grepTree = (dir: string, needle: string) => {
    const hits: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile() && readFileSync(p).includes(needle)) hits.push(p);
      }
    };
    walk(dir);
    return hits;
  };

  test('the step unattended: an admin, a firewall and secrets on the node; the first backup archived, copied off, read back and drilled', async () => {
    await node.reset();
    await installBundle(node);
    writeFileSync(join(node.rootDir, 'root/admin.yml'), adminAnswers(PASSWORD), { mode: 0o600 });
    const admin = await node.exec(['pve-baseline', 'apply', '--answers', '/root/admin.yml', '--yes', '--only', 'admin-account'], { timeoutMs: 120_000 });
    assert.equal(admin.exitCode, 0, admin.stdout + admin.stderr);
    // What the restore must bring back, besides the admin: a firewall and the secrets pmxcfs keeps.
    await sh(node, `printf '[OPTIONS]\\n\\nenable: 0\\npolicy_in: DROP\\n\\n[IPSET management]\\n\\n10.77.7.1 # lab workstation\\n' > /etc/pve/firewall/cluster.fw`);
    await sh(node, `printf 'totp:alice@pam:1:${TOTP_SECRET}\\n' > /etc/pve/priv/tfa.cfg && printf 'alice@pam!ci ${TOKEN_SECRET}\\n' > /etc/pve/priv/token.cfg`);
    await waitUntil(async () => (await node.exec(['sqlite3', '/var/lib/pve-cluster/config.db', "select count(*) from tree where name='token.cfg'"])).stdout.trim() === '1', 'pmxcfs to store the seeded files', 10_000);

    host.authorize((await sh(node, 'cat /root/.ssh/id_rsa.pub')).trim());
    writeFileSync(join(node.rootDir, 'root/backup.yml'), answers(host.hostKeyFingerprint), { mode: 0o600 });
    const t0 = performance.now();
    const r = await applyBackupStep('backup.yml');
    process.stderr.write(`measured: the config-backup step on the lab node (install age, identity, units, first backup with copy and drill): ${Math.round(performance.now() - t0)} ms\n`);
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /=> verified/);
    assert.match(r.stdout, /\| archived \d+ files: pve1-config-\d{8}T\d{6}Z\.tar\.gz\.age/);
    assert.match(r.stdout, /\| drilling the copy off the node/);
    for (const label of ['every file matches the manifest', 'integrity_check', 'user.cfg']) assert.match(r.stdout, new RegExp(`ok +[^\\n]*${label.replace('.', '\\.')}`, 'i'), `${label}:\n${r.stdout}`);
    assert.equal(remoteArchives().length, 1, 'one copy on the backup host');
    assert.deepEqual(remoteArchives(), localArchives(), 'the same archive here and there');
    assert.equal((await sh(node, 'systemctl is-enabled pve-baseline-config-backup.timer')).trim(), 'enabled');
    const status = JSON.parse(readFileSync(join(node.rootDir, STATE.slice(1), 'config-backup/last.json'), 'utf8')) as { last: { ok: boolean; ms: Record<string, number> } };
    assert.equal(status.last.ok, true);
    process.stderr.write(`measured: one backup on the lab node: archive ${status.last.ms.archive} ms, copy and read-back ${status.last.ms.copy} ms, drill ${status.last.ms.drill} ms\n`);
  });

  test('the archive: 0600, no seeded secret readable in it here or on the backup host; the standard age and tar open it, sha256sum -c passes, and config.db holds the secrets', () => {
    const name = localArchives()[0]!;
    const local = join(node.rootDir, STATE.slice(1), 'config-backup/archives', name);
    assert.equal(statSync(local).mode & 0o777, 0o600);
    assert.equal(statSync(join(node.rootDir, STATE.slice(1), 'config-backup/archives')).mode & 0o777, 0o700);
    for (const secret of [TOTP_SECRET, TOKEN_SECRET]) {
      assert.deepEqual(grepTree(join(node.rootDir, STATE.slice(1), 'config-backup'), secret), [], `${secret} readable on the node`);
      assert.deepEqual(grepTree(host.dir, secret), [], `${secret} readable on the backup host`);
    }
    const identity = join(work, 'identity.txt');
    copyFileSync(join(node.rootDir, STATE.slice(1), 'config-backup/identity.txt'), identity);
    const out = join(work, 'opened');
    execFileSync('mkdir', ['-p', out]);
    const tarball = execFileSync('age', ['-d', '-i', identity, join(remoteDir(), name)]);
    execFileSync('tar', ['-xz', '-C', out], { input: tarball });
    const [top] = readdirSync(out);
    execFileSync('sha256sum', ['--quiet', '-c', 'SHA256SUMS'], { cwd: join(out, top!) });
    const tfa = execFileSync('sqlite3', [join(out, top!, 'config.db'), "select data from tree where name='tfa.cfg'"]).toString();
    assert.match(tfa, new RegExp(TOTP_SECRET), 'the secret is in the database, and only readable once decrypted');
    copyFileSync(join(remoteDir(), name), join(work, name));
  });

  test('a remote copy with one byte changed fails the drill naming it; a host key other than the pinned one, or a fetched one in an answers file, is refused', async () => {
    const name = remoteArchives().at(-1)!;
    const file = join(remoteDir(), name);
    const bytes = readFileSync(file);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0x01;
    writeFileSync(file, bytes);
    const drill = await node.exec(['pve-baseline', 'backup', '--drill'], { timeoutMs: 120_000 });
    assert.equal(drill.exitCode, 1, drill.stdout + drill.stderr);
    assert.match(drill.stdout + drill.stderr, new RegExp(`FAIL.*${name.replace(/\./g, '\\.')}`));
    copyFileSync(join(work, name), file);

    writeFileSync(join(node.rootDir, 'root/fetched.yml'), answers('fetch'), { mode: 0o600 });
    const fetched = await applyBackupStep('fetched.yml');
    assert.equal(fetched.exitCode, 2, fetched.stdout + fetched.stderr);
    assert.match(fetched.stderr, /config-backup\.host_key: an answers file must give the fingerprint itself/);

    const other = 'SHA256:' + 'A'.repeat(43);
    writeFileSync(join(node.rootDir, 'root/other.yml'), answers(other), { mode: 0o600 });
    const refused = await applyBackupStep('other.yml');
    assert.equal(refused.exitCode, 1, refused.stdout + refused.stderr);
    assert.match(refused.stdout, new RegExp(`${host.hostKeyFingerprint.replace(/[+/]/g, (c) => `\\${c}`)}`), 'the key seen is named');
    assert.match(refused.stdout, /rolled back/);
    // Rolled back: the pinned settings are as before.
    assert.match(await sh(node, 'cat /etc/pve-baseline/config-backup.json'), new RegExp(host.hostKeyFingerprint.replace(/[+/]/g, (c) => `\\${c}`)));
    // The journal keeps the answers last given; the right ones again, and nothing is left to do.
    const again = await applyBackupStep('backup.yml');
    assert.equal(again.exitCode, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /=> (compliant|verified)/);
  });

  test('the backup host unreachable: a clear error, the local archive kept, check reports it; the timer\'s run, once it is back, shows in check --json', async () => {
    await host.setReachable(false);
    let failed;
    try {
      const before = localArchives();
      failed = await node.exec(['pve-baseline', 'backup'], { timeoutMs: 120_000 });
      assert.equal(failed.exitCode, 1, failed.stdout + failed.stderr);
      assert.match(failed.stderr, new RegExp(`FAILED: not copied off the node: .*${host.address.replace(/\./g, '\\.')}.*; the archive is kept here: ${STATE}/config-backup/archives/pve1-config-`));
      const kept = localArchives().at(-1)!;
      assert.ok(!before.includes(kept) && failed.stderr.includes(kept), `the new local archive kept (keep 3 here too): ${kept}`);
      assert.ok(!remoteArchives().includes(kept), 'and not on the backup host');
      const step = (await checkJson()).steps.find((s) => s.id === 'config-backup')!;
      assert.equal(step.status, 'drift');
      assert.match(step.changes.map((c) => c.reason).join('\n'), /the last run \(.*\) failed: not copied off the node: .*; a backup now/, JSON.stringify(step));
    } finally {
      await host.setReachable(true);
    }

    const before = JSON.parse(readFileSync(join(node.rootDir, STATE.slice(1), 'config-backup/last.json'), 'utf8')) as { last: { at: string } };
    await sh(node, 'systemctl start pve-baseline-config-backup.service');
    const after = JSON.parse(readFileSync(join(node.rootDir, STATE.slice(1), 'config-backup/last.json'), 'utf8')) as { last: { at: string; ok: boolean } };
    assert.ok(after.last.at > before.last.at && after.last.ok, JSON.stringify(after));
    assert.match(await sh(node, 'journalctl -u pve-baseline-config-backup.service --no-pager -o cat'), /pve-baseline backup: done/);
    const step = (await checkJson()).steps.find((s) => s.id === 'config-backup')!;
    assert.equal(step.status, 'compliant', JSON.stringify(step));
    assert.ok(step.checks?.some((c) => c.ok && /succeeded/.test(c.label) && c.detail?.startsWith(after.last.at)), JSON.stringify(step.checks));
    assert.ok(remoteArchives().length <= 3, 'the backup host keeps the last 3');
  });

  test('the documented restore on a fresh node: config.db put back brings the admin, the ACLs, the firewall and the secrets back', async () => {
    const name = readdirSync(work).find((n) => n.endsWith('.tar.gz.age'))!;
    const want = { user: await sh(node, 'cat /etc/pve/user.cfg'), firewall: await sh(node, 'cat /etc/pve/firewall/cluster.fw') };
    assert.match(want.user, /alice@pam/);
    await node.reset();
    assert.doesNotMatch(await sh(node, 'cat /etc/pve/user.cfg'), /alice@pam/, 'a fresh node');
    copyFileSync(join(work, name), join(node.rootDir, 'root', name));
    copyFileSync(join(work, 'identity.txt'), join(node.rootDir, 'root/identity.txt'));
    // The procedure as the document writes it, with the standard tools.
    await sh(node, 'apt-get install -y -q age >/dev/null');
    await sh(node, `mkdir -p /root/restore && age -d -i /root/identity.txt /root/${name} | tar -xz -C /root/restore`);
    const top = (await sh(node, 'ls /root/restore')).trim();
    await sh(node, `cd /root/restore/${top} && sha256sum --quiet -c SHA256SUMS`);
    assert.equal((await sh(node, `sqlite3 /root/restore/${top}/config.db "PRAGMA integrity_check"`)).trim(), 'ok');
    await sh(node, `systemctl stop pve-cluster && install -m 0600 /root/restore/${top}/config.db /var/lib/pve-cluster/config.db && systemctl start pve-cluster`);
    assert.equal(await sh(node, 'cat /etc/pve/user.cfg'), want.user, 'the admin and the ACLs');
    assert.equal(await sh(node, 'cat /etc/pve/firewall/cluster.fw'), want.firewall, 'the firewall');
    assert.match(await sh(node, 'cat /etc/pve/priv/token.cfg'), new RegExp(TOKEN_SECRET));
    rmSync(work, { recursive: true, force: true });
  });
}
