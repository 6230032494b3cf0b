import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAccessLine, watchForWebRequest } from '../../src/pve/access-log.ts';
import type { Exec } from '../../src/system/exec.ts';

test("pveproxy's access log lines: address unmapped, day-first date with its offset, method, path, status", () => {
  const q = parseAccessLine('::ffff:10.77.9.1 - root@pam [03/12/2026:10:14:07 +0100] "GET /api2/json/version HTTP/1.1" 200 97');
  assert.deepEqual(q && { ...q, time: q.time.toISOString() }, { address: '10.77.9.1', user: 'root@pam', time: '2026-12-03T09:14:07.000Z', method: 'GET', path: '/api2/json/version', status: 200 });
  assert.equal(parseAccessLine('garbage'), null);
  assert.equal(parseAccessLine('2001:db8::5 - - [31/01/2027:23:59:59 -0230] "POST /api2/json/access/ticket HTTP/1.1" 401 0')?.time.toISOString(), '2027-02-01T02:29:59.000Z');
});

test('watchForWebRequest: only a request from the operator after the change counts', async () => {
  const since = new Date('2026-12-03T09:14:00Z');
  const log = [
    '::ffff:10.77.9.1 - - [03/12/2026:09:10:00 +0000] "GET / HTTP/1.1" 200 1', // before the change
    '::ffff:10.77.9.66 - - [03/12/2026:09:15:00 +0000] "GET / HTTP/1.1" 200 1', // someone else
    '::ffff:10.77.9.1 - - [03/12/2026:09:15:02 +0000] "GET /x HTTP/1.1" 200 1',
  ].join('\n');
  const argvs: string[][] = [];
  const exec = { run: async (argv: string[]) => (argvs.push(argv), { exitCode: 0, stdout: log, stderr: '' }) } as unknown as Exec;
  const seen = await watchForWebRequest(exec, { from: '10.77.9.1', since, signal: new AbortController().signal, pollMs: 5, log: '/l' });
  assert.equal(seen?.path, '/x');
  assert.deepEqual(argvs[0], ['tail', '-n', '2000', '--', '/l']);
  const stop = new AbortController();
  setTimeout(() => stop.abort(), 30);
  assert.equal(await watchForWebRequest(exec, { from: '10.77.9.2', since, signal: stop.signal, pollMs: 5 }), null);
});
