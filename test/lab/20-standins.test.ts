/**
 * The Proxmox stand-ins behave like Proxmox: every row of standins.cases.ts
 * (the published guides' own commands included) runs in order in a fresh node; then the
 * user.cfg they wrote re-reads identically and is in Proxmox's writer layout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labOrSkip, sh } from './helpers.ts';
import { CASES, type Case } from './standins.cases.ts';
import { parseUserCfg, writeUserCfg } from '../../src/pve/user-cfg.ts';

const lab = await labOrSkip();

function check(expected: string | RegExp | undefined, actual: string, what: string): void {
  if (expected === undefined) assert.equal(actual, '', `${what} should be empty`);
  else if (typeof expected === 'string') assert.equal(actual, expected, what);
  else assert.match(actual, expected, what);
}

const sortEntries = (v: unknown) => (v as unknown[]).map((e) => JSON.stringify(e)).sort();

if (lab) {
  await lab.reset();

  test(`the table has at least 40 rows and covers every seed with pveum/pvesh commands`, () => {
    assert.ok(CASES.length >= 40, `${CASES.length} rows`);
    for (const seed of ['000', '001', '002', '003']) assert.ok(CASES.some((c) => c.seed === seed), `seed ${seed}`);
  });

  CASES.forEach((c: Case, i) => {
    const name = `${String(i + 1).padStart(2, '0')} ${c.argv.map((a) => (/\s/.test(a) || a === '' ? JSON.stringify(a) : a)).join(' ')}${c.seed ? ` [seed ${c.seed}]` : ''}`;
    test(name, async () => {
      const r = await lab.exec(c.argv, { ...(c.input !== undefined ? { input: c.input } : {}), ...(c.env ? { env: c.env } : {}) });
      const detail = `\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
      assert.equal(r.exitCode, c.exit, `exit code${detail}`);
      if (c.json !== undefined) {
        const got = JSON.parse(r.stdout) as unknown;
        if (c.jsonSet) assert.deepEqual(sortEntries(got), sortEntries(c.json));
        else assert.deepEqual(got, c.json);
      } else {
        check(c.stdout, r.stdout, `stdout${detail}`);
      }
      check(c.stderr, r.stderr, `stderr${detail}`);
    });
  });

  test('the user.cfg the stand-ins wrote re-reads identically and is in the writer layout', async () => {
    const raw = await sh(lab, 'cat /etc/pve/user.cfg');
    const { cfg, warnings } = parseUserCfg(raw);
    assert.deepEqual(warnings, []);
    assert.equal(writeUserCfg(cfg), raw, 'parse + write reproduces the file byte for byte');
    assert.equal(
      raw,
      [
        'user:admin@pam:1:0::::::',
        'user:backup1@pve:1:0::::::',
        'user:carol@pve:1:0::::via pvesh::',
        'token:carol@pve!monitoring:0:1::',
        "user:dave@pve:1:0:Dave:O'Neil%3A ops:dave@example.com:on call::",
        'user:labadmin@pam:1:0::::::',
        'user:root@pam:1:0:::admin@example.com:::',
        'user:svc-pve-automation@pve:1:0::::::',
        'token:svc-pve-automation@pve!automation-token:1798675200:1::',
        '',
        'group:backup-team:backup1@pve,dave@pve::',
        '',
        'pool:webpool:Web servers:::',
        '',
        'role:AutomationRole:Datastore.AllocateSpace,VM.Config.Network,VM.PowerMgmt:',
        'role:BackupAdmin:Datastore.AllocateSpace,Datastore.Audit,VM.Backup:',
        'role:VMControl:VM.PowerMgmt:',
        '',
        'acl:1:/:admin@pam,labadmin@pam:Administrator:',
        'acl:1:/:@backup-team:BackupAdmin:',
        'acl:1:/storage:carol@pve:PVEDatastoreUser:',
        'acl:1:/vms:svc-pve-automation@pve:AutomationRole,VMControl:',
        'acl:0:/vms/100:dave@pve:PVEVMUser:',
        '',
      ].join('\n'),
    );
  });

  test('secrets land in /etc/pve/priv with pmxcfs modes', async () => {
    const shadow = await sh(lab, 'cat /etc/pve/priv/shadow.cfg');
    assert.match(shadow, /^svc-pve-automation:\$5\$[^$]{8}\$[A-Za-z0-9./]{43}:$/m);
    assert.match(shadow, /^backup1:\$5\$/m);
    assert.match(shadow, /^carol:\$5\$/m);
    assert.doesNotMatch(shadow, /^alice:/m, 'deleting a pve user removes its password');
    const tokens = await sh(lab, 'cat /etc/pve/priv/token.cfg');
    assert.match(tokens, /^carol@pve!monitoring [0-9a-f-]{36}\nsvc-pve-automation@pve!automation-token [0-9a-f-]{36}\n$/);
    const modes = await sh(lab, 'stat -c "%U:%G %a %n" /etc/pve/user.cfg /etc/pve/priv/shadow.cfg /etc/pve/priv/token.cfg /etc/pve/firewall/cluster.fw /etc/pve/nodes/pve1/host.fw');
    assert.equal(
      modes,
      'root:www-data 640 /etc/pve/user.cfg\nroot:www-data 600 /etc/pve/priv/shadow.cfg\nroot:www-data 600 /etc/pve/priv/token.cfg\nroot:www-data 640 /etc/pve/firewall/cluster.fw\nroot:www-data 640 /etc/pve/nodes/pve1/host.fw\n',
    );
    assert.equal(await sh(lab, 'cat /etc/pve/firewall/cluster.fw'), '[OPTIONS]\n\nenable: 1\npolicy_in: DROP\n\n');
    assert.equal(await sh(lab, 'cat /etc/pve/nodes/pve1/host.fw'), '[OPTIONS]\n\nenable: 1\n\n');
  });

  test('a pve-realm password set by pveum verifies with crypt(3)', async () => {
    const hash = (await sh(lab, "sed -n 's/^carol:\\(.*\\):$/\\1/p' /etc/pve/priv/shadow.cfg")).trim();
    const r = await lab.exec(['perl', '-e', 'print crypt($ARGV[0], $ARGV[1]) eq $ARGV[1] ? "ok" : "bad"', 'Carol-Pass-1', hash]);
    assert.equal(r.stdout, 'ok');
  });
}
