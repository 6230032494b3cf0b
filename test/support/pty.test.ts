/** The pseudo-terminal driver itself: echo, terminal size, timeouts, signals. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { describeFailure, KEYS, ptyEnv, rawOutput, runInPty } from './pty.ts';

/** Running (a zombie waiting for its new parent to reap it counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

test('cat echoes what is typed and exits 0 on Ctrl+D', async () => {
  const r = await runInPty({
    argv: ['cat'],
    env: ptyEnv(),
    script: [
      { send: 'hello pty\n' },
      // once from the terminal's echo, once from cat
      { waitFor: 'hello pty\nhello pty', timeoutMs: 3000 },
      { mark: 'before-eof' },
      { send: KEYS.ctrlD },
      { mark: 'after-eof' },
      { waitExit: true, timeoutMs: 3000 },
    ],
  });
  assert.ok(r.ok, describeFailure(r));
  assert.equal(r.exitCode, 0);
  assert.equal(r.signal, null);
  assert.equal(r.waits.length, 1);
  assert.ok(r.waits[0]!.matchedMs > 0 && r.waits[0]!.matchedMs < 3000);
  assert.deepEqual(
    r.between.map((b) => [b.from, b.to]),
    [['before-eof', 'after-eof']],
  );
  assert.equal(rawOutput(r).toString(), 'hello pty\r\nhello pty\r\n');
  assert.equal(r.totalBytes, rawOutput(r).length);
  assert.equal(r.plain, 'hello pty\nhello pty\n');
  assert.deepEqual(r.screen.slice(0, 3), ['hello pty', 'hello pty', '']);
  assert.ok(r.peakRssKiB !== null && r.peakRssKiB > 0);
});

test('the terminal has the size asked for (80x24 by default)', async () => {
  const r = await runInPty({ argv: ['sh', '-c', 'stty size'], env: ptyEnv(), script: [{ waitExit: true }] });
  assert.ok(r.ok, describeFailure(r));
  assert.equal(r.plain.trim(), '24 80');
  const wide = await runInPty({ argv: ['sh', '-c', 'stty size'], env: ptyEnv(), cols: 120, rows: 40, script: [{ waitExit: true }] });
  assert.equal(wide.plain.trim(), '40 120');
});

test('the child gets exactly the environment given', async () => {
  const r = await runInPty({
    argv: ['sh', '-c', 'echo "term=$TERM ci=${CI-unset} x=$PTY_X"'],
    env: ptyEnv({ PTY_X: 'y', CI: 'true' }),
    script: [{ waitFor: 'x=y' }, { waitExit: true }],
  });
  assert.ok(r.ok, describeFailure(r));
  assert.match(r.plain, /term=xterm-256color ci=unset x=y/);
});

test('a waitFor that never matches times out, reports the step and kills the child', async () => {
  const started = Date.now();
  const r = await runInPty({
    argv: ['sh', '-c', 'echo started; exec sleep 5'],
    env: ptyEnv(),
    script: [{ waitFor: 'started' }, { waitFor: 'never printed', timeoutMs: 300, label: 'the-wait' }, { waitExit: true }],
  });
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 4000, `took ${elapsed} ms`);
  assert.equal(r.ok, false);
  assert.ok(r.timedOut, 'timedOut is set');
  assert.equal(r.timedOut.index, 1);
  assert.equal(r.timedOut.kind, 'waitFor');
  assert.equal(r.timedOut.step.label, 'the-wait');
  assert.match(r.timedOut.reason, /never printed/);
  assert.match(r.timedOut.tail, /started/);
  assert.equal(r.killed, true);
  assert.equal(r.signal, 'SIGTERM');
  assert.ok(r.pid !== null && !alive(r.pid), 'the child is gone');
  // the step after the timeout never ran
  assert.equal(r.steps.length, 2);
});

test('Ctrl+C in a cooked terminal is SIGINT; signal and closePty reach the child', async () => {
  const ctrlC = await runInPty({
    argv: ['sh', '-c', 'echo ready; exec sleep 5'],
    env: ptyEnv(),
    script: [{ waitFor: 'ready' }, { send: KEYS.ctrlC }, { waitExit: true, timeoutMs: 2000 }],
  });
  assert.ok(ctrlC.ok, describeFailure(ctrlC));
  assert.equal(ctrlC.signal, 'SIGINT');

  const hup = await runInPty({
    argv: ['sh', '-c', 'echo ready; exec sleep 5'],
    env: ptyEnv(),
    script: [{ waitFor: 'ready' }, { signal: 'SIGHUP' }, { waitExit: true, timeoutMs: 2000 }],
  });
  assert.equal(hup.signal, 'SIGHUP');

  const closed = await runInPty({
    argv: ['sh', '-c', 'echo ready; exec sleep 5'],
    env: ptyEnv(),
    script: [{ waitFor: 'ready' }, { closePty: true }, { waitExit: true, timeoutMs: 2000 }],
  });
  assert.ok(closed.ok, describeFailure(closed));
  assert.equal(closed.signal, 'SIGHUP');
});

test('a script that ends early gets its child killed; a missing program is reported', async () => {
  const r = await runInPty({ argv: ['sleep', '5'], env: ptyEnv(), script: [{ sleepMs: 50 }] });
  assert.equal(r.killedAtEnd, true);
  assert.equal(r.ok, false);
  assert.equal(r.signal, 'SIGTERM');

  const missing = await runInPty({ argv: ['/nonexistent/program'], env: ptyEnv(), script: [{ waitExit: true }] });
  assert.equal(missing.ok, false);
  assert.match(missing.error ?? '', /cannot run \/nonexistent\/program/);
});

test('escapes are stripped in plain and applied on the screen', async () => {
  // red "one", then cursor up and rewrite: what Ink's incremental renderer does
  const r = await runInPty({
    argv: ['printf', '\\033[31mone\\033[0m\\r\\nxx\\033[1A\\033[Gtwo\\033[K\\r\\n'],
    env: ptyEnv(),
    script: [{ waitExit: true }],
  });
  assert.ok(r.ok, describeFailure(r));
  assert.equal(r.plain, 'one\nxx\ntwo\n');
  assert.deepEqual(r.screen.slice(0, 3), ['two', 'xx', '']);
});

test('a timeout kills the whole process group, background children included', async () => {
  const r = await runInPty({
    argv: ['sh', '-c', 'sleep 30 & echo "bg=$!"; wait'],
    env: ptyEnv(),
    script: [{ waitFor: 'bg=\\d+', regex: true }, { waitFor: 'never printed', timeoutMs: 200 }],
  });
  assert.equal(r.timedOut?.index, 1);
  const bg = Number(r.waits[0]!.match.slice(3));
  assert.ok(bg > 0);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(alive(bg), false, `background sleep ${bg} survived`);
});

test('resize reaches the child; snapshots record the screen', async () => {
  const r = await runInPty({
    argv: ['sh', '-c', 'echo first; read x; stty size'],
    env: ptyEnv(),
    script: [
      { waitFor: 'first' },
      { snapshot: 'start' },
      { resize: { cols: 100, rows: 30 } },
      { send: '\n' },
      { waitFor: '30 100' },
      { waitExit: true },
    ],
  });
  assert.ok(r.ok, describeFailure(r));
  assert.equal(r.snapshots[0]!.name, 'start');
  assert.equal(r.snapshots[0]!.screen[0], 'first');
  assert.equal(r.snapshots[0]!.screen.length, 24);
  assert.equal(r.screen.length, 30);
});
