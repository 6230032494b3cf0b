/**
 * The config-backup step on fakes: what it plans on a fresh node (age and
 * sqlite3, an identity, the settings, the timer, the first run), nothing on
 * a node set up as answered with a good last run, the pinned host key (a key
 * read from the host is only taken when typed, never from a file), and how
 * the last run is judged (the document's restore procedure too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange } from '../../src/engine/change.ts';
import { validateAnswer } from '../../src/engine/questions.ts';
import { backupUnits, parseSettings, renderSettings } from '../../src/backup/settings.ts';
import type { BackupStatus } from '../../src/backup/status.ts';
import { backupSection, configBackupStep, IDENTITY_FILE, settingsFor, statusChecks, type ConfigBackupAnswers } from '../../steps/config-backup.ts';
import { scriptedExec } from '../fixtures/scripted-exec.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { stepContext } from '../fixtures/step-run.ts';
import { generateClientKey, startSftpServer } from '../fixtures/sftp-server.ts';
import { tempDir } from '../fixtures/temp.ts';

const FP = 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s';
const ANSWERS: ConfigBackupAnswers = { destination: 'sftp', host: '10.77.7.1', port: 2222, user: 'pve-backup', remote_dir: 'pve-config/pve1', host_key: FP, key_file: '/root/.ssh/id_rsa', recipient: 'generate', keep: 7, schedule: 'weekly' };
const PROGRAM = '/usr/local/bin/pve-baseline';
const GOOD: BackupStatus = {
  last: { at: '2026-12-03T10:00:00.000Z', ok: true, archive: { name: 'pve1-config-20261203T100000Z.tar.gz.age', path: '/var/lib/pve-baseline/config-backup/archives/pve1-config-20261203T100000Z.tar.gz.age', sha256: 'ab'.repeat(32), bytes: 123456, files: 321 }, copy: { where: 'sftp://pve-backup@10.77.7.1:2222/pve-config/pve1', ok: true }, drill: { ok: true, source: 'remote', checks: [] }, ms: {} },
};
GOOD.lastGood = GOOD.last;

function node(o: { setUp?: boolean; status?: BackupStatus } = {}) {
  const units = backupUnits(PROGRAM, 'weekly');
  const files = new MemoryFiles({
    '/root/.ssh/id_rsa': { content: 'PRIVATE', mode: 0o600 },
    '/root/.ssh/id_rsa.pub': 'ssh-rsa AAAAB3NzaC1yc2E root@pve1\n',
    ...(o.setUp
      ? {
          '/etc/pve-baseline/config-backup.json': renderSettings(settingsFor(ANSWERS)),
          '/etc/systemd/system/pve-baseline-config-backup.service': units.service,
          '/etc/systemd/system/pve-baseline-config-backup.timer': units.timer,
          '/usr/bin/age': '',
          '/usr/bin/age-keygen': '',
          '/usr/bin/sqlite3': '',
          [IDENTITY_FILE]: { content: 'AGE-SECRET-KEY-1...', mode: 0o600 },
        }
      : {}),
    ...(o.status ? { '/var/lib/pve-baseline/config-backup/last.json': JSON.stringify(o.status) } : {}),
  });
  const exec = scriptedExec([
    [['systemctl', 'is-enabled', 'pve-baseline-config-backup.timer'], { stdout: o.setUp ? 'enabled\n' : 'disabled\n' }],
    [['systemctl', 'is-active', 'pve-baseline-config-backup.timer'], { stdout: o.setUp ? 'active\n' : 'inactive\n' }],
  ]);
  return { exec, files, ctx: { ...stepContext({ exec, files }), program: PROGRAM } };
}

test('a fresh node: age and sqlite3, an identity kept on the node, the settings (0600), the timer, and a first backup to prove it', async () => {
  const { ctx } = node();
  const facts = await configBackupStep.probe(ctx);
  assert.deepEqual(configBackupStep.preflight!(facts, ANSWERS, ctx.node).filter((c) => !c.ok), []);
  const plan = configBackupStep.plan(facts, ANSWERS, ctx.node);
  assert.deepEqual(plan.map(describeChange), [
    'run apt-get install -y age sqlite3',
    'run install -d -m 0700 /var/lib/pve-baseline/config-backup',
    `run age-keygen -o ${IDENTITY_FILE}`,
    'create /etc/pve-baseline/config-backup.json',
    'create /etc/systemd/system/pve-baseline-config-backup.service',
    'create /etc/systemd/system/pve-baseline-config-backup.timer',
    'run systemctl daemon-reload',
    'run systemctl enable --now pve-baseline-config-backup.timer',
    `run ${PROGRAM} backup`,
  ]);
  const settings = plan.find((c) => c.kind === 'file' && c.path.endsWith('config-backup.json'));
  assert.equal(settings?.kind === 'file' ? settings.mode : undefined, 0o600);
  const parsed = parseSettings(settings?.kind === 'file' ? settings.after! : '');
  assert.deepEqual(parsed.destination, { kind: 'sftp', host: '10.77.7.1', port: 2222, user: 'pve-backup', dir: 'pve-config/pve1', hostKey: FP, keyFile: '/root/.ssh/id_rsa' });
  assert.equal(parsed.identityFile, IDENTITY_FILE);
  assert.deepEqual(parsed.recipients, [], 'the identity\'s own recipient is read from it at run time');
  assert.match(plan[2]!.reason, /COPY IT OFF THE NODE/);
  const timer = plan.find((c) => c.kind === 'file' && c.path.endsWith('.timer'));
  assert.match(timer?.kind === 'file' ? timer.after! : '', /^OnCalendar=weekly$\n^Persistent=true$/m);
});

test('set up as answered, with a good recent run: nothing to do, and verify passes; a failed last run (host gone) fails verify and check, naming it', async () => {
  const { ctx } = node({ setUp: true, status: GOOD });
  const facts = await configBackupStep.probe(ctx);
  assert.deepEqual(configBackupStep.plan(facts, ANSWERS, ctx.node), []);
  const checks = statusChecks(GOOD, 'weekly', new Date('2026-12-05T00:00:00Z'));
  assert.ok(checks.every((c) => c.ok), JSON.stringify(checks));

  const failed: BackupStatus = { last: { at: '2026-12-04T10:00:00.000Z', ok: false, error: 'the backup host 10.77.7.1:2222 did not answer within 10 s', copy: { where: 'sftp://pve-backup@10.77.7.1:2222/pve-config/pve1', ok: false, detail: 'did not answer within 10 s' }, ms: {} }, lastGood: GOOD.last };
  const judged = statusChecks(failed, 'weekly', new Date('2026-12-05T00:00:00Z'));
  assert.deepEqual(judged.filter((c) => !c.ok).map((c) => c.label), ['the last backup run succeeded', 'copied off the node (sftp://pve-backup@10.77.7.1:2222/pve-config/pve1)']);
  assert.match(judged[0]!.detail!, /did not answer within 10 s; the last good one: 2026-12-03T10:00:00.000Z/);
  // A week and more without a good one is stale.
  assert.equal(statusChecks(GOOD, 'weekly', new Date('2026-12-12T00:00:00Z')).find((c) => /recent/.test(c.label))?.ok, false);
  // A failing run is planned again, so an apply proves the setup anew.
  const again = node({ setUp: true, status: failed });
  assert.deepEqual(configBackupStep.plan(await configBackupStep.probe(again.ctx), ANSWERS, again.ctx.node).map(describeChange), [`run ${PROGRAM} backup`]);
});

test('the host key: a fingerprint is pinned as given; one read from the host is only taken when typed, never from an answers file', async (t) => {
  const question = configBackupStep.questions!.find((q) => q.id === 'host_key')!;
  const { ctx } = node();
  const qctx = { files: ctx.files };
  assert.deepEqual(await validateAnswer(question, FP, { destination: 'sftp', host: '10.77.7.1', port: 2222 }, { ...qctx, from: 'file' }), { ok: true, value: FP });
  const fromFile = await validateAnswer(question, 'fetch', { destination: 'sftp', host: '10.77.7.1', port: 2222 }, { ...qctx, from: 'file' });
  assert.equal(fromFile.ok, false);
  assert.match(!fromFile.ok ? fromFile.message : '', /an answers file must give the fingerprint itself/);
  // Typed at the wizard, "fetch" reads the key the host presents (shown for comparison before it is kept).
  const server = await startSftpServer({ root: await tempDir(t), authorizedKey: (await generateClientKey()).publicKey });
  t.after(() => server.close());
  assert.deepEqual(await validateAnswer(question, 'fetch', { destination: 'sftp', host: '127.0.0.1', port: server.port }, { ...qctx, from: 'typed' }), { ok: true, value: server.fingerprint });
  const details = await (question as { details: (v: string, c: unknown) => Promise<{ items: { fields: string[][] }[] }> }).details(server.fingerprint, qctx);
  assert.deepEqual(details.items[0]!.fields, [['fingerprint', server.fingerprint]]);
  const wrong = await validateAnswer(question, 'MD5:aa:bb', { destination: 'sftp', host: 'h' }, { ...qctx, from: 'typed' });
  assert.match(!wrong.ok ? wrong.message : '', /SHA256 fingerprint/);
});

test('the document: the last good archive with its checksum and both places, and the restore without pve-baseline (single node, the cluster caveat)', () => {
  const text = JSON.stringify(backupSection(settingsFor(ANSWERS), GOOD, 'pve1'));
  assert.match(text, /pve1-config-20261203T100000Z\.tar\.gz\.age/);
  assert.match(text, new RegExp('ab'.repeat(32)));
  assert.match(text, /sftp:\/\/pve-backup@10\.77\.7\.1:2222\/pve-config\/pve1/);
  assert.match(text, /age -d -i IDENTITY ARCHIVE \| tar -xz/);
  assert.match(text, /systemctl stop pve-cluster/);
  assert.match(text, /install -m 0600 config\.db \/var\/lib\/pve-cluster\/config\.db/);
  assert.match(text, /never put an older config\.db under a live member/);
});
