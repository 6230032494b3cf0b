import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  changeSymbol,
  describeChange,
  formatArgv,
  inverseServiceAction,
  serviceArgv,
  summarize,
  unifiedDiff,
  type Change,
  type FileChange,
} from '../../src/engine/change.ts';
import { Secret } from '../../src/system/secret.ts';

const file = (before: string | null, after: string | null, path = '/etc/ssh/sshd_config.d/00-baseline.conf'): FileChange => ({
  kind: 'file',
  path,
  before,
  after,
  reason: 'r',
});

describe('unifiedDiff', () => {
  it('shows a new file against /dev/null', () => {
    assert.equal(
      unifiedDiff(file(null, 'PasswordAuthentication no\nPermitRootLogin prohibit-password\n')),
      [
        '--- /dev/null',
        '+++ b/etc/ssh/sshd_config.d/00-baseline.conf',
        '@@ -0,0 +1,2 @@',
        '+PasswordAuthentication no',
        '+PermitRootLogin prohibit-password',
      ].join('\n'),
    );
  });

  it('shows a deleted file against /dev/null', () => {
    assert.equal(
      unifiedDiff(file('deb http://download.proxmox.com/debian/pve trixie pve-no-subscription\n', null, '/etc/apt/sources.list.d/pve.list')),
      [
        '--- a/etc/apt/sources.list.d/pve.list',
        '+++ /dev/null',
        '@@ -1,1 +0,0 @@',
        '-deb http://download.proxmox.com/debian/pve trixie pve-no-subscription',
      ].join('\n'),
    );
  });

  it('shows an edit with three lines of context, and fewer when asked', () => {
    const before = ['1', '2', '3', '4', '5', '6', '7', '8', '9', ''].join('\n');
    const after = before.replace('5\n', 'FIVE\n');
    assert.equal(
      unifiedDiff(file(before, after, '/etc/x.conf')),
      ['--- a/etc/x.conf', '+++ b/etc/x.conf', '@@ -2,7 +2,7 @@', ' 2', ' 3', ' 4', '-5', '+FIVE', ' 6', ' 7', ' 8'].join('\n'),
    );
    assert.equal(
      unifiedDiff(file(before, after, '/etc/x.conf'), 1),
      ['--- a/etc/x.conf', '+++ b/etc/x.conf', '@@ -4,3 +4,3 @@', ' 4', '-5', '+FIVE', ' 6'].join('\n'),
    );
  });

  it('marks a missing final newline the way diff -u does', () => {
    assert.equal(
      unifiedDiff(file('a\nb', 'a\nb\n', '/etc/x')),
      ['--- a/etc/x', '+++ b/etc/x', '@@ -1,2 +1,2 @@', ' a', '-b', '\\ No newline at end of file', '+b'].join('\n'),
    );
  });

  it('has no hunk when nothing changed, and no jsdiff preamble', () => {
    const out = unifiedDiff(file('same\n', 'same\n', '/etc/x'));
    assert.equal(out, '--- a/etc/x\n+++ b/etc/x');
    assert.doesNotMatch(out, /^(Index:|====)/m);
  });
});

describe('formatArgv', () => {
  it('leaves plain words alone and quotes the rest for a POSIX shell reader', () => {
    assert.equal(
      formatArgv(['pveum', 'user', 'add', 'alice@pam', '--comment', 'Ops admin', '--expire', '0']),
      "pveum user add alice@pam --comment 'Ops admin' --expire 0",
    );
    assert.equal(formatArgv(['pveum', 'acl', 'modify', '/', '--roles', 'Administrator,PVEAuditor']), 'pveum acl modify / --roles Administrator,PVEAuditor');
    assert.equal(formatArgv(['systemd-run', '--on-active=120s', '/var/lib/x/revert.sh']), 'systemd-run --on-active=120s /var/lib/x/revert.sh');
    assert.equal(formatArgv(['echo', '']), "echo ''");
    assert.equal(formatArgv(['echo', "it's"]), "echo 'it'\\''s'");
    assert.equal(formatArgv(['echo', '$HOME', 'a;b', '*', 'x y', 'tab\there', 'line\nbreak']), "echo '$HOME' 'a;b' '*' 'x y' 'tab\there' 'line\nbreak'");
    assert.equal(formatArgv([]), '');
  });
});

describe('describeChange, changeSymbol, summarize', () => {
  const changes: Change[] = [
    file(null, 'x'),
    file('x', null),
    file('x', 'y'),
    file(null, 'z', '/etc/other'),
    { kind: 'command', argv: ['pveum', 'user', 'add', 'alice@pam', '--comment', 'Ops admin'], reason: '' },
    { kind: 'command', argv: ['chpasswd'], input: new Secret('alice:pw'), reason: '' },
    { kind: 'service', unit: 'ssh.service', action: 'reload', reason: '' },
  ];

  it('describes each change in one line', () => {
    assert.deepEqual(changes.map(describeChange), [
      'create /etc/ssh/sshd_config.d/00-baseline.conf',
      'delete /etc/ssh/sshd_config.d/00-baseline.conf',
      'edit /etc/ssh/sshd_config.d/00-baseline.conf',
      'create /etc/other',
      "run pveum user add alice@pam --comment 'Ops admin'",
      'run chpasswd (with input on stdin)',
      'reload ssh.service',
    ]);
  });

  it('gives each its symbol and counts them', () => {
    assert.deepEqual(changes.map(changeSymbol), ['+', '-', '~', '+', '>', '>', '~']);
    assert.deepEqual(summarize(changes), { create: 2, change: 1, remove: 1, run: 2, services: 1 });
    assert.deepEqual(summarize([]), { create: 0, change: 0, remove: 0, run: 0, services: 0 });
  });
});

describe('service changes', () => {
  it('runs systemctl with the action and unit', () => {
    assert.deepEqual(serviceArgv({ kind: 'service', unit: 'fail2ban.service', action: 'enable', reason: '' }), ['systemctl', 'enable', 'fail2ban.service']);
  });

  it('inverts start/stop and enable/disable, and repeats reload/restart', () => {
    assert.deepEqual(
      (['start', 'stop', 'enable', 'disable', 'reload', 'restart'] as const).map(inverseServiceAction),
      ['stop', 'start', 'disable', 'enable', 'reload', 'restart'],
    );
  });
});
