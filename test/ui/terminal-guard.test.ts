/**
 * While the wizard owns the terminal, nothing but Ink may write to it: Node's
 * warnings, raw writes to stderr and the console go to the log instead, and
 * all of it is given back when the wizard is done.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { appendToLogFile, guardTerminal } from '../../src/cli/terminal-guard.ts';
import { tempDir } from '../fixtures/temp.ts';

/** What reaches the terminal's stderr: a recorder put in place of process.stderr.write for the test. */
function recordStderr(t: TestContext): string[] {
  const seen: string[] = [];
  Object.defineProperty(process.stderr, 'write', {
    value: (chunk: unknown) => {
      seen.push(String(chunk));
      return true;
    },
    writable: true,
    configurable: true,
  });
  t.after(() => delete (process.stderr as { write?: unknown }).write);
  return seen;
}

/** Warnings are emitted on the next tick; one macrotask later every listener has run. */
const warningsDelivered = () => new Promise((resolve) => setImmediate(resolve));

function guard(t: TestContext) {
  const log: [string, string][] = [];
  const release = guardTerminal({ log: (source, text) => log.push([source, text]) });
  t.after(() => release());
  return { log, release };
}

test("a Node warning (the leaking AbortSignal's) goes to the log, and Node's own printing is back afterwards", async (t) => {
  const terminal = recordStderr(t);
  const before = process.listeners('warning');
  const { log, release } = guard(t);

  const leaking = new AbortController();
  for (let i = 0; i < 11; i++) leaking.signal.addEventListener('abort', () => undefined);
  await warningsDelivered();
  assert.deepEqual(terminal, [], 'nothing on the terminal');
  assert.equal(log.length, 1);
  assert.equal(log[0]![0], 'warning');
  assert.match(log[0]![1], /^MaxListenersExceededWarning: Possible EventTarget memory leak detected\. 11 abort listeners added to \[AbortSignal\]/);

  process.emitWarning('with a code', { type: 'DemoWarning', code: 'PVE_DEMO', detail: 'more detail' });
  await warningsDelivered();
  assert.deepEqual(log[1], ['warning', '[PVE_DEMO] DemoWarning: with a code\nmore detail']);
  assert.deepEqual(terminal, []);

  assert.equal(release(), 2, 'release says how many it diverted');
  assert.deepEqual(process.listeners('warning'), before, 'the warning listeners are what they were');
  process.emitWarning('after the wizard', 'DemoWarning');
  await warningsDelivered();
  assert.equal(terminal.length, 1);
  assert.match(terminal[0]!, /DemoWarning: after the wizard/);
  assert.equal(log.length, 2);
});

test('raw writes to stderr and every console method go to the log, never to the terminal', async (t) => {
  const terminal = recordStderr(t);
  const { log, release } = guard(t);
  let called = false;
  assert.equal(process.stderr.write('a library complains\n'), true);
  process.stderr.write(Buffer.from('bytes too\n'), () => (called = true));
  console.error('console.error %s', 'formatted');
  console.log('console.log goes to stdout, which is Ink\'s');
  console.warn('warn');
  console.info('info');
  console.debug('debug');
  await warningsDelivered();
  assert.equal(called, true, 'a write callback still runs');
  assert.deepEqual(terminal, []);
  assert.deepEqual(log, [
    ['stderr', 'a library complains\n'],
    ['stderr', 'bytes too\n'],
    ['console', 'console.error formatted\n'],
    ['console', "console.log goes to stdout, which is Ink's\n"],
    ['console', 'warn\n'],
    ['console', 'info\n'],
    ['console', 'debug\n'],
  ]);

  assert.equal(release(), 7);
  assert.equal(release(), 7, 'a second release changes nothing');
  process.stderr.write('after\n');
  console.error('console after');
  assert.deepEqual(terminal, ['after\n', 'console after\n']);
  assert.equal(log.length, 7);
});

test('the log file is created on the first entry, mode 0600, with timestamped entries', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'wizard.log');
  const sink = appendToLogFile(file, () => new Date('2026-01-02T03:04:05.000Z'));
  await assert.rejects(fs.stat(file), { code: 'ENOENT' });
  sink.log('warning', 'MaxListenersExceededWarning: leak');
  sink.log('stderr', 'two\nlines\n');
  sink.close();
  assert.equal(await fs.readFile(file, 'utf8'), '2026-01-02T03:04:05.000Z warning: MaxListenersExceededWarning: leak\n2026-01-02T03:04:05.000Z stderr: two\nlines\n');
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
});

test('the log file is never written through a symbolic link, and a failing log loses the text, not the frame', async (t) => {
  const terminal = recordStderr(t);
  const dir = await tempDir(t);
  const target = path.join(dir, 'target');
  await fs.writeFile(target, 'untouched\n');
  const file = path.join(dir, 'wizard.log');
  await fs.symlink(target, file);
  const sink = appendToLogFile(file);
  assert.throws(() => sink.log('stderr', 'x'), { code: 'ELOOP' });

  const release = guardTerminal({ log: sink.log });
  t.after(() => release());
  process.stderr.write('lost, not shown\n');
  assert.equal(release(), 1);
  assert.deepEqual(terminal, []);
  assert.equal(await fs.readFile(target, 'utf8'), 'untouched\n');
});
