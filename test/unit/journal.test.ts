import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { DEFAULT_STATE_DIR, Journal, JournalCorruptError, stateDir } from '../../src/engine/journal.ts';
import { Secret } from '../../src/system/secret.ts';
import { persistableAnswers } from '../../src/engine/step.ts';
import type { BackupRecord } from '../../src/system/files.ts';
import { passwordStep } from '../fixtures/steps.ts';
import { modeOf, tempDir } from '../fixtures/temp.ts';

/** A clock that ticks one second per call, so timestamps are predictable. */
function clock(start = Date.parse('2025-06-01T10:00:00.000Z')) {
  let t = start;
  return () => new Date((t += 1000));
}

function captureError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

function onDisk(journal: Journal): any {
  return JSON.parse(readFileSync(journal.path, 'utf8'));
}

const backup: BackupRecord = { path: '/etc/ssh/sshd_config', existed: true, copy: '/x/copy', sha256: 'ab', mode: 0o644, uid: 0, gid: 0, takenAt: 't' };

describe('Journal', () => {
  it('lives in a 0700 directory as a 0600 file, even when the directory existed with a wider mode', async (t) => {
    const dir = path.join(await tempDir(t), 'state');
    await fs.mkdir(dir, { mode: 0o755 });
    await fs.chmod(dir, 0o755);
    const journal = Journal.open(dir, 'boot-1');
    journal.setStatus('a', 'pending');
    assert.equal(journal.path, path.join(dir, 'journal.json'));
    assert.equal(journal.dir, dir);
    assert.equal(modeOf(await fs.stat(dir)), 0o700);
    assert.equal(modeOf(await fs.stat(journal.path)), 0o600);
    journal.setStatus('a', 'verified');
    assert.equal(modeOf(await fs.stat(journal.path)), 0o600, 'still 0600 after a rewrite');
  });

  it('creates a missing state directory (and parents) 0700', async (t) => {
    const dir = path.join(await tempDir(t), 'var', 'lib', 'pve-baseline');
    Journal.open(dir, 'boot-1');
    assert.equal(modeOf(await fs.stat(dir)), 0o700);
  });

  it('is valid JSON on disk after every transition, matching what it reports', async (t) => {
    const dir = path.join(await tempDir(t), 'state');
    const journal = Journal.open(dir, 'boot-7', clock());
    assert.equal(journal.isEmpty, true);
    assert.equal(journal.status('sshd'), 'pending');
    assert.equal(journal.step('sshd'), undefined);
    const first = onDisk(journal);
    assert.equal(first.schemaVersion, 1);
    assert.deepEqual(first.steps, {});

    const transitions: Array<() => void> = [
      () => journal.setAnswers('sshd', { admin: 'alice', port: 22, strict: true, groups: ['sudo'] }),
      () => journal.setStatus('sshd', 'applying', { applyId: 'apply-1' }),
      () => journal.recordApplied('sshd', { kind: 'file', path: '/etc/ssh/sshd_config', backup }),
      () => journal.recordApplied('sshd', { kind: 'command', argv: ['sshd', '-t'] }),
      () => journal.recordApplied('sshd', { kind: 'service', unit: 'ssh.service', action: 'reload' }),
      () => journal.setStatus('sshd', 'applied'),
      () => journal.setStatus('sshd', 'failed', { error: 'verification failed: x (rolled back)' }),
      () => journal.clearApplied('sshd'),
      () => journal.setStatus('sshd', 'applying', { applyId: 'apply-2', note: 'again' }),
      () => journal.setStatus('sshd', 'verified'),
      () => journal.setStatus('fw', 'reverted', { note: 'by the operator' }),
    ];
    for (const step of transitions) {
      step();
      const data = onDisk(journal);
      assert.deepEqual(data.steps, journal.all(), 'the file holds exactly what the journal reports');
    }
    const sshd = journal.step('sshd')!;
    assert.equal(sshd.status, 'verified');
    assert.equal(sshd.bootId, 'boot-7');
    assert.equal(sshd.applyId, 'apply-2');
    assert.deepEqual(sshd.applied, [], 'a new apply id starts a new record');
    assert.equal(sshd.error, undefined, 'an error is cleared by a new apply and by verification');
    assert.deepEqual(sshd.answers, { admin: 'alice', port: 22, strict: true, groups: ['sudo'] });
    assert.deepEqual(
      sshd.history.map((h) => [h.status, h.note]),
      [
        ['applying', undefined],
        ['applied', undefined],
        ['failed', undefined],
        ['applying', 'again'],
        ['verified', undefined],
      ],
    );
    assert.equal(sshd.history[0]!.at, '2025-06-01T10:00:03.000Z');
    assert.equal(sshd.updatedAt, sshd.history.at(-1)!.at);
    assert.equal(journal.isEmpty, false);
  });

  it('keeps the error of a failure until the step is applied or verified again', async (t) => {
    const journal = Journal.open(path.join(await tempDir(t), 'state'), 'b');
    journal.setStatus('x', 'failed', { error: 'boom' });
    journal.setStatus('x', 'reverted');
    assert.equal(journal.step('x')!.error, 'boom');
    journal.setStatus('x', 'applying', { applyId: 'id' });
    assert.equal(journal.step('x')!.error, undefined);
  });

  it('keeps what was applied when an apply resumes under the same id', async (t) => {
    const journal = Journal.open(path.join(await tempDir(t), 'state'), 'b');
    journal.setStatus('x', 'applying', { applyId: 'id-1' });
    journal.recordApplied('x', { kind: 'file', path: '/etc/a', backup });
    journal.setStatus('x', 'applying', { applyId: 'id-1', note: 'resumed after an interruption' });
    assert.equal(journal.step('x')!.applyId, 'id-1');
    assert.deepEqual(journal.step('x')!.applied, [{ kind: 'file', path: '/etc/a', backup }]);
    journal.setStatus('x', 'applying', { applyId: 'id-2' });
    assert.deepEqual(journal.step('x')!.applied, []);
  });

  it('caps the history at the last 20 transitions', async (t) => {
    const journal = Journal.open(path.join(await tempDir(t), 'state'), 'b', clock());
    for (let i = 0; i < 25; i++) journal.setStatus('x', i % 2 ? 'applied' : 'applying', { note: `#${i}` });
    const history = journal.step('x')!.history;
    assert.equal(history.length, 20);
    assert.equal(history[0]!.note, '#5');
    assert.equal(history.at(-1)!.note, '#24');
    assert.equal(onDisk(journal).steps.x.history.length, 20);
  });

  it('survives being reopened (another process, another boot) and records the new boot id', async (t) => {
    const dir = path.join(await tempDir(t), 'state');
    const a = Journal.open(dir, 'boot-1');
    a.setStatus('x', 'applying', { applyId: 'id' });
    a.recordApplied('x', { kind: 'command', argv: ['true'], undo: ['false'] });
    const b = Journal.open(dir, 'boot-2');
    assert.equal(b.status('x'), 'applying');
    assert.deepEqual(b.step('x')!.applied, [{ kind: 'command', argv: ['true'], undo: ['false'] }]);
    b.setStatus('x', 'verified');
    assert.deepEqual(
      b.step('x')!.history.map((h) => h.bootId),
      ['boot-1', 'boot-2'],
    );
    assert.equal(a.status('x'), 'verified', 'every read comes from the file');
  });

  it('refuses to record an applied change for a step it has no record of', async (t) => {
    const journal = Journal.open(path.join(await tempDir(t), 'state'), 'b');
    assert.throws(() => journal.recordApplied('ghost', { kind: 'command', argv: ['x'] }), { message: 'journal: no record for step ghost' });
    journal.clearApplied('ghost');
    assert.equal(journal.step('ghost'), undefined);
  });

  it('refuses to start over a corrupt journal: names it, keeps the damaged copy aside, says how to go on', async (t) => {
    const dir = path.join(await tempDir(t), 'state');
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, 'journal.json');
    await fs.writeFile(file, '{"schemaVersion":1,"steps":{"x":');
    const error = captureError(() => Journal.open(dir, 'b', clock()));
    assert.ok(error instanceof JournalCorruptError, String(error));
    assert.equal(error.file, file);
    assert.match(error.problem, /^it is not valid JSON: /);
    assert.equal(error.movedTo, `${file}.corrupt-2025-06-01T10-00-01-000Z`);
    assert.match(error.message, new RegExp(`^the journal ${file} is damaged \\(it is not valid JSON: .*\\), so what ran on this node is not known; nothing was changed\\. `));
    assert.match(error.message, /The damaged copy was moved to \S+journal\.json\.corrupt-\S+\. To go on, run pve-baseline again/);
    assert.deepEqual((await fs.readdir(dir)).sort(), ['journal.json.corrupt-2025-06-01T10-00-01-000Z']);
    assert.equal(await fs.readFile(error.movedTo!, 'utf8'), '{"schemaVersion":1,"steps":{"x":', 'the damaged copy is kept byte for byte');
    // The next run starts a new journal.
    const fresh = Journal.open(dir, 'b');
    assert.equal(fresh.isEmpty, true);
  });

  it('never reads a damaged journal as empty: the read-only view throws, naming the file, and changes nothing', async (t) => {
    const dir = path.join(await tempDir(t), 'state');
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, 'journal.json');
    const good = { status: 'verified', answers: {}, updatedAt: 't', bootId: 'b', applied: [], history: [] };
    const damaged: [string, RegExp][] = [
      ['{"schemaVersion":1,"steps":{"x":', /it is not valid JSON/],
      ['', /it is empty/],
      ['\u0000\u00ff garbage', /it is not valid JSON/],
      ['[]', /it is not a JSON object/],
      ['null', /it is not a JSON object/],
      ['{"steps":{}}', /schemaVersion is missing, not 1/],
      ['{"schemaVersion":2,"steps":{}}', /schemaVersion is 2, not 1/],
      ['{"schemaVersion":1}', /no "steps" object/],
      ['{"schemaVersion":1,"steps":[]}', /no "steps" object/],
      [JSON.stringify({ schemaVersion: 1, steps: { x: 'verified' } }), /step "x" is not an object/],
      [JSON.stringify({ schemaVersion: 1, steps: { x: { ...good, status: 'done' } } }), /step "x" has an unknown status "done"/],
      [JSON.stringify({ schemaVersion: 1, steps: { x: { ...good, applied: {} } } }), /no list of applied changes/],
      [JSON.stringify({ schemaVersion: 1, steps: { x: { ...good, applied: [{ kind: 'file', path: '/etc/x' }] } } }), /applied change 1 is a file change without its path or backup/],
      [JSON.stringify({ schemaVersion: 1, steps: { x: { ...good, applied: [{ kind: 'command', argv: 'rm -rf /' }] } } }), /applied change 1 is a command without a list of arguments/],
      [JSON.stringify({ schemaVersion: 1, steps: { x: { ...good, history: [{}] } } }), /damaged history/],
      [JSON.stringify({ schemaVersion: 1, steps: { x: { ...good, answers: { name: [1, 2] } } } }), /answer name of the wrong type/],
      [JSON.stringify({ schemaVersion: 1, steps: { x: { ...good, answers: { name: null } } } }), /answer name of the wrong type/],
    ];
    for (const [text, problem] of damaged) {
      await fs.writeFile(file, text);
      const error = captureError(() => Journal.snapshot(dir, 'b'));
      assert.ok(error instanceof JournalCorruptError, `${JSON.stringify(text)}: ${String(error)}`);
      assert.match(error.problem, problem, text);
      assert.equal(error.movedTo, undefined);
      assert.match(error.message, new RegExp(`^the journal ${file} is damaged .*nothing was changed\\. To recover, run pve-baseline \\(the wizard or apply --yes\\)`));
      assert.equal(await fs.readFile(file, 'utf8'), text, 'left as it was');
      assert.deepEqual(await fs.readdir(dir), ['journal.json']);
    }
    // The shape it accepts is the one it writes.
    await fs.writeFile(file, JSON.stringify({ schemaVersion: 1, createdAt: 't', steps: { x: good } }));
    assert.equal(Journal.snapshot(dir, 'b').status('x'), 'verified');
  });

  it('reads only a regular journal file of sane size: a FIFO, a link, a directory or a huge file is damage, not a hang', async (t) => {
    const dir = path.join(await tempDir(t), 'state');
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, 'journal.json');
    const plants: [string, () => Promise<unknown>, RegExp][] = [
      ['a FIFO', () => execa('mkfifo', [file]), /^not a regular file \(a named pipe \(FIFO\)\)$/],
      ['a link', () => fs.symlink('/etc/passwd', file), /^a symbolic link/],
      ['a directory', () => fs.mkdir(file), /^not a regular file \(a directory\)$/],
      ['huge', () => fs.writeFile(file, ' '.repeat(5 * 1024 * 1024)), /^larger than 4 MiB/],
    ];
    for (const [what, plant, problem] of plants) {
      await plant();
      const error = captureError(() => Journal.snapshot(dir, 'b'));
      assert.ok(error instanceof JournalCorruptError, `${what}: ${String(error)}`);
      assert.match(error.problem, problem, what);
      const moved = captureError(() => Journal.open(dir, 'b'));
      assert.ok(moved instanceof JournalCorruptError && moved.movedTo, `${what}: ${String(moved)}`);
      assert.deepEqual(await fs.readdir(dir), [path.basename(moved.movedTo)], `${what}: moved aside as it is`);
      await fs.rm(moved.movedTo, { recursive: true });
    }
  });

  it('stores answers without secrets', async (t) => {
    const journal = Journal.open(path.join(await tempDir(t), 'state'), 'b');
    const step = passwordStep({ id: 'pw', file: '/nonexistent' });
    journal.setAnswers('pw', persistableAnswers(step, { user: 'admin', password: new Secret('Sup3r-secret-pw'), other: new Secret('tok-123') }));
    assert.deepEqual(journal.step('pw')!.answers, { user: 'admin' });
    const text = await fs.readFile(journal.path, 'utf8');
    assert.equal(text.includes('Sup3r-secret-pw'), false);
    assert.equal(text.includes('tok-123'), false);
    assert.equal(text.includes('[secret]'), false, 'not even the marker: the keys are dropped');
  });

  it('setAnswers replaces the answers and leaves status and history alone', async (t) => {
    const journal = Journal.open(path.join(await tempDir(t), 'state'), 'b');
    journal.setStatus('x', 'failed', { error: 'e' });
    journal.setAnswers('x', { a: '1' });
    journal.setAnswers('x', { b: '2' });
    const x = journal.step('x')!;
    assert.deepEqual(x.answers, { b: '2' });
    assert.equal(x.status, 'failed');
    assert.equal(x.history.length, 1);
  });
});

describe('stateDir', () => {
  it('is /var/lib/pve-baseline unless PVE_BASELINE_STATE_DIR says otherwise', () => {
    assert.equal(DEFAULT_STATE_DIR, '/var/lib/pve-baseline');
    assert.equal(stateDir({}), '/var/lib/pve-baseline');
    assert.equal(stateDir({ PVE_BASELINE_STATE_DIR: '' }), '/var/lib/pve-baseline');
    assert.equal(stateDir({ PVE_BASELINE_STATE_DIR: '/tmp/lab-state' }), '/tmp/lab-state');
  });
});
