/** The failure path: a failed apply or a failed verify is rolled back at once, and the journal says so. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { applyChanges, rollbackApplied } from '../../src/engine/apply.ts';
import { Journal } from '../../src/engine/journal.ts';
import { BackupStore, LocalFiles } from '../../src/system/files.ts';
import { ensureFilesStep, markerStep } from '../fixtures/steps.ts';
import { engine } from '../fixtures/harness.ts';
import { RecordingExec } from '../fixtures/exec.ts';
import { modeOf, tempDir } from '../fixtures/temp.ts';

const ORIGINAL = Buffer.concat([Buffer.from('# original\r\nPort 22\n'), Buffer.from([0x00, 0xff, 0xfe]), Buffer.from('no newline at end')]);

async function setup(t: { after(fn: () => unknown): void }) {
  const dir = await tempDir(t);
  const etc = path.join(dir, 'etc');
  await fs.mkdir(etc, { recursive: true });
  const existing = path.join(etc, 'sshd_config');
  await fs.writeFile(existing, ORIGINAL);
  await fs.chmod(existing, 0o640);
  await fs.chown(existing, 1234, 5678);
  return { dir, stateDir: path.join(dir, 'state'), etc, existing, created: path.join(etc, 'sshd_config.d', '00-baseline.conf'), marker: path.join(dir, 'marker') };
}

async function assertRestored(existing: string, created: string, marker: string) {
  assert.deepEqual(await fs.readFile(existing), ORIGINAL, 'byte-identical');
  const st = await fs.stat(existing);
  assert.equal(modeOf(st), 0o640);
  assert.deepEqual([st.uid, st.gid], [1234, 5678]);
  await assert.rejects(fs.stat(created), { code: 'ENOENT' }, 'a file that did not exist is removed again');
  await assert.rejects(fs.stat(marker), { code: 'ENOENT' }, 'the command was undone');
}

describe('failure path', () => {
  it('a failed verify rolls back at once: files byte-identical, command undone, journal failed "(rolled back)"', async (t) => {
    const { dir, stateDir, existing, created, marker } = await setup(t);
    const step = ensureFilesStep({
      id: 'sshd',
      title: 'SSH hardening',
      files: [
        { path: existing, content: 'Port 22\nPasswordAuthentication no\n' },
        { path: created, content: 'PermitRootLogin prohibit-password\n', mode: 0o600 },
      ],
      commands: [{ argv: ['touch', marker], undo: ['rm', '-f', marker] }],
      extraChecks: async (ctx) => {
        // The changes really were in place when verify ran.
        const seen = await ctx.files.read(existing);
        return [
          { label: 'changes in place', ok: seen === 'Port 22\nPasswordAuthentication no\n' && (await ctx.files.meta(marker)) !== null },
          { label: 'admin can log in with a key', ok: false, detail: 'Permission denied (publickey)' },
        ];
      },
    });
    const dependent = markerStep({ id: 'next', title: 'Next', marker: path.join(dir, 'next'), dependsOn: ['sshd'] });
    const { runner, journal, exec } = engine({ stateDir, steps: [step, dependent] });

    const [result, skipped] = await runner.run();

    const expected = 'verification failed: admin can log in with a key (Permission denied (publickey)) (rolled back)';
    assert.equal(result!.outcome, 'failed');
    assert.equal(result!.reason, expected);
    assert.equal(result!.rolledBack, true);
    assert.deepEqual(
      result!.checks!.map((c) => [c.label, c.ok]),
      [
        [`${existing} has the wanted content`, true],
        [`${created} has the wanted content`, true],
        ['changes in place', true],
        ['admin can log in with a key', false],
      ],
    );
    await assertRestored(existing, created, marker);
    assert.deepEqual((exec as RecordingExec).argvs, [
      ['touch', marker],
      ['rm', '-f', marker],
    ]);
    const record = journal.step('sshd')!;
    assert.equal(record.status, 'failed');
    assert.equal(record.error, expected);
    assert.deepEqual(record.applied, [], 'nothing is left to undo');
    assert.deepEqual(
      record.history.map((h) => h.status),
      ['applying', 'applied', 'failed'],
    );
    assert.equal(skipped!.reason, 'needs SSH hardening first');
  });

  it('a command that exits non-zero fails the apply, rolls back what was done before it, and names the command', async (t) => {
    const { dir, stateDir, existing, created, marker } = await setup(t);
    const missing = path.join(dir, 'no-such-file');
    const step = ensureFilesStep({
      id: 'sshd',
      files: [
        { path: existing, content: 'changed\n' },
        { path: created, content: 'new\n' },
      ],
      commands: [
        { argv: ['touch', marker], undo: ['rm', '-f', marker] },
        { argv: ['cat', missing], undo: ['touch', path.join(dir, 'undo-of-the-failed-command-ran')] },
      ],
    });
    const { runner, journal, exec } = engine({ stateDir, steps: [step] });

    const [result] = await runner.run();

    assert.equal(result!.outcome, 'failed');
    assert.equal(result!.rolledBack, true);
    assert.equal(result!.checks, undefined);
    assert.equal(result!.reason, `apply failed: cat ${missing} exited with 1: cat: ${missing}: No such file or directory (rolled back)`);
    await assertRestored(existing, created, marker);
    assert.deepEqual((exec as RecordingExec).argvs, [
      ['touch', marker],
      ['cat', missing],
      ['rm', '-f', marker],
    ]);
    await assert.rejects(fs.stat(path.join(dir, 'undo-of-the-failed-command-ran')), { code: 'ENOENT' });
    const record = journal.step('sshd')!;
    assert.equal(record.status, 'failed');
    assert.equal(record.error, result!.reason);
    assert.deepEqual(
      record.history.map((h) => h.status),
      ['applying', 'failed'],
    );
  });

  it('says so when the rollback itself fails, and keeps the record of what is left to undo', async (t) => {
    const { dir, stateDir, existing, marker } = await setup(t);
    const step = ensureFilesStep({
      id: 'sshd',
      files: [{ path: existing, content: 'changed\n' }],
      commands: [{ argv: ['touch', marker], undo: ['test', '-e', path.join(dir, 'absent')] }],
      extraChecks: () => [{ label: 'sshd -t accepts the config', ok: false }],
    });
    const { runner, journal } = engine({ stateDir, steps: [step] });
    const [result] = await runner.run();
    assert.equal(result!.rolledBack, false);
    assert.equal(
      result!.reason,
      `verification failed: sshd -t accepts the config; rollback incomplete: test -e ${path.join(dir, 'absent')} exited with 1`,
    );
    assert.deepEqual(await fs.readFile(existing), ORIGINAL, 'the rest of the rollback still happened');
    const record = journal.step('sshd')!;
    assert.equal(record.status, 'failed');
    assert.equal(record.error, result!.reason);
    assert.deepEqual(
      record.applied.map((a) => a.kind),
      ['file', 'command'],
    );
  });

  it('a verify that throws counts as a failed check and is rolled back', async (t) => {
    const { stateDir, existing, created, marker } = await setup(t);
    const step = ensureFilesStep({
      id: 'x',
      files: [{ path: existing, content: 'changed\n' }],
      extraChecks: () => {
        throw new Error('ssh2: connect ECONNREFUSED 192.0.2.10:22');
      },
    });
    const { runner } = engine({ stateDir, steps: [step] });
    const [result] = await runner.run();
    assert.equal(result!.reason, 'verification failed: verification ran (ssh2: connect ECONNREFUSED 192.0.2.10:22) (rolled back)');
    await assertRestored(existing, created, marker);
  });
});

describe('applyChanges / rollbackApplied', () => {
  it('records each change as it happens and undoes them newest first, services last', async (t) => {
    const dir = await tempDir(t);
    const stateDir = path.join(dir, 'state');
    const journal = Journal.open(stateDir, 'boot-1');
    const backups = new BackupStore(path.join(stateDir, 'backups'));
    const exec = new RecordingExec();
    const file = path.join(dir, 'a.conf');
    await fs.writeFile(file, 'before\n');
    journal.setStatus('s', 'applying', { applyId: 'set-1' });
    const lines: string[] = [];
    await applyChanges(
      's',
      'set-1',
      [
        { kind: 'file', path: file, before: 'before\n', after: 'after\n', reason: '' },
        { kind: 'command', argv: ['printf', '%s\\n', 'one', 'two'], undo: ['printf', 'undone\\n'], reason: '' },
        { kind: 'file', path: file, before: 'after\n', after: null, reason: 'the same file twice keeps its first backup' },
      ],
      { exec, files: new LocalFiles(), backups, journal, onLine: (l) => lines.push(l) },
    );
    await assert.rejects(fs.stat(file), { code: 'ENOENT' });
    assert.deepEqual(lines, ["$ printf '%s\\n' one two", 'one', 'two']);
    const applied = journal.step('s')!.applied;
    assert.deepEqual(
      applied.map((a) => a.kind),
      ['file', 'command'],
    );
    assert.ok(applied[0]!.kind === 'file' && applied[0]!.backup.copy!.includes(path.join('backups', 'set-1')));

    // Services are undone with their inverse; reloads and restarts are repeated after the files are back.
    const records = [
      ...applied,
      { kind: 'service' as const, unit: 'ssh.service', action: 'reload' as const },
      { kind: 'service' as const, unit: 'fail2ban.service', action: 'enable' as const },
    ];
    const undoExec = new RecordingExec({
      run: async (argv) => ({ argv: [...argv], exitCode: 0, stdout: '', stderr: '' }),
    });
    const problems = await rollbackApplied(records, { exec: undoExec, backups, onLine: () => {} });
    assert.deepEqual(problems, []);
    assert.equal(await fs.readFile(file, 'utf8'), 'before\n');
    assert.deepEqual(undoExec.argvs, [
      ['systemctl', 'disable', 'fail2ban.service'],
      ['printf', 'undone\\n'],
      ['systemctl', 'reload', 'ssh.service'],
    ]);
  });
});
