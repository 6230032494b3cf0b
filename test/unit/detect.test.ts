import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  describeNode,
  describeSession,
  detectNode,
  ancestorSshConnection,
  detectSession,
  parseOsRelease,
  parsePveversion,
  parseSshConnection,
} from '../../src/system/detect.ts';
import type { Exec, ExecResult } from '../../src/system/exec.ts';
import { RecordingExec } from '../fixtures/exec.ts';
import { testNode } from '../fixtures/node.ts';

const DEBIAN_13 = `PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
DEBIAN_VERSION_FULL=13.1
ID=debian
HOME_URL="https://www.debian.org/"
`;

const DEBIAN_12 = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
`;

describe('parsePveversion', () => {
  it('reads a PVE 9 line', () => {
    const line = 'pve-manager/9.1.2/9d436f37a0ac4172 (running kernel: 6.17.2-1-pve)';
    assert.deepEqual(parsePveversion(`${line}\n`), { version: '9.1.2', major: 9, line });
  });

  it('reads a PVE 8 line among other output', () => {
    const out = 'some warning\npve-manager/8.4.14/b502d23c55afcba1 (running kernel: 6.8.12-15-pve)  \n';
    assert.deepEqual(parsePveversion(out), { version: '8.4.14', major: 8, line: 'pve-manager/8.4.14/b502d23c55afcba1 (running kernel: 6.8.12-15-pve)' });
  });

  it('says null for anything else', () => {
    assert.equal(parsePveversion(''), null);
    assert.equal(parsePveversion('bash: pveversion: command not found'), null);
    assert.equal(parsePveversion('pve-manager/unknown/abc'), null);
    assert.equal(parsePveversion('pve-manager: 8.4.14 (running version: 8.4.14/b502d23c55afcba1)'), null);
  });
});

describe('parseSshConnection and detectSession', () => {
  it('reads SSH_CONNECTION for IPv4 and IPv6', () => {
    assert.deepEqual(parseSshConnection('192.0.2.50 53422 192.0.2.10 22'), {
      kind: 'ssh',
      clientAddress: '192.0.2.50',
      clientPort: 53422,
      serverAddress: '192.0.2.10',
      serverPort: 22,
    });
    assert.deepEqual(parseSshConnection(' 2001:db8::50 40000 2001:db8::10 2222\n'), {
      kind: 'ssh',
      clientAddress: '2001:db8::50',
      clientPort: 40000,
      serverAddress: '2001:db8::10',
      serverPort: 2222,
    });
  });

  it('says null for a missing or malformed value', () => {
    assert.equal(parseSshConnection(undefined), null);
    assert.equal(parseSshConnection(''), null);
    assert.equal(parseSshConnection('192.0.2.50 53422 192.0.2.10'), null);
    assert.equal(parseSshConnection('a b c d e'), null);
  });

  it('prefers SSH, then a console device on standard input, else unknown', () => {
    assert.equal(detectSession({ SSH_CONNECTION: '192.0.2.50 1 192.0.2.10 22', TERM: 'linux' }, '/dev/tty1').kind, 'ssh');
    assert.deepEqual(detectSession({ TERM: 'xterm-256color' }, '/dev/tty1'), { kind: 'console', tty: '/dev/tty1' });
    assert.deepEqual(detectSession({ TERM: 'linux' }, '/dev/tty1'), { kind: 'console', tty: '/dev/tty1' });
    assert.deepEqual(detectSession({ TERM: 'xterm' }, '/dev/pts/0'), { kind: 'unknown' });
    assert.deepEqual(detectSession({}), { kind: 'unknown' });
  });

  it('counts every kind of console device: virtual, serial, ARM serial, hypervisor, /dev/console', () => {
    for (const tty of ['/dev/tty1', '/dev/tty63', '/dev/ttyS0', '/dev/ttyS1', '/dev/ttyAMA0', '/dev/hvc0', '/dev/console']) {
      assert.deepEqual(detectSession({}, tty), { kind: 'console', tty }, tty);
    }
  });

  it('never counts a pseudo-terminal or a look-alike path as the console', () => {
    for (const tty of ['/dev/pts/0', '/dev/pts/3', '/dev/tty', '/dev/ttyp0', '/dev/ttyUSB0', '/dev/tty1/../pts/0', '/dev/tty1x', 'tty1', '/tmp/dev/tty1', '/dev/hvc']) {
      assert.deepEqual(detectSession({ TERM: 'linux' }, tty), { kind: 'unknown' }, tty);
    }
  });

  // Defect 18: TERM=linux alone made a session "console", where the second-login proof may be skipped.
  it('TERM=linux alone is not the console: tmux from the console attached over SSH, machinectl shell, no terminal at all', () => {
    // tmux started on tty1, attached from an SSH login: the pane is a pseudo-terminal, TERM may still say linux.
    assert.deepEqual(detectSession({ TERM: 'linux', TMUX: '/tmp/tmux-0/default,1234,0' }, '/dev/pts/3'), { kind: 'unknown' });
    // machinectl shell gives a pseudo-terminal and passes TERM through.
    assert.deepEqual(detectSession({ TERM: 'linux' }, '/dev/pts/5'), { kind: 'unknown' });
    // Standard input is not a terminal, or its name could not be read.
    assert.deepEqual(detectSession({ TERM: 'linux' }), { kind: 'unknown' });
  });

  it('is not the console when anything says SSH, tmux or screen, even on a console device', () => {
    for (const env of [
      { SSH_CLIENT: '192.0.2.50 53422 22' },
      { SSH_TTY: '/dev/pts/0' },
      { SSH_CONNECTION: 'garbled' },
      { TMUX: '/tmp/tmux-0/default,1234,0' },
      { STY: '1234.pts-0.pve1' },
    ]) {
      assert.deepEqual(detectSession({ TERM: 'linux', ...env }, '/dev/tty1'), { kind: 'unknown' }, JSON.stringify(env));
    }
  });

  it('describes a session in the operator\'s words', () => {
    assert.equal(describeSession({ kind: 'ssh', clientAddress: '192.0.2.50', clientPort: 1, serverAddress: 's', serverPort: 22 }), 'SSH from 192.0.2.50');
    assert.equal(describeSession({ kind: 'console', tty: '/dev/ttyS0' }), 'console (/dev/ttyS0)');
    assert.equal(describeSession({ kind: 'console' }), 'console');
    assert.equal(describeSession({ kind: 'unknown' }), 'local terminal');
  });
});

describe('parseOsRelease', () => {
  it('reads the codename and version of Debian 13 and 12', () => {
    assert.deepEqual(parseOsRelease(DEBIAN_13), { codename: 'trixie', version: '13' });
    assert.deepEqual(parseOsRelease(DEBIAN_12), { codename: 'bookworm', version: '12' });
  });

  it('accepts quoted and unquoted values, and a missing VERSION_ID (testing/sid)', () => {
    assert.deepEqual(parseOsRelease('VERSION_CODENAME="forky"\n'), { codename: 'forky', version: '' });
    assert.deepEqual(parseOsRelease('VERSION_ID=13\nVERSION_CODENAME=trixie'), { codename: 'trixie', version: '13' });
  });

  it('says null without a codename', () => {
    assert.equal(parseOsRelease(''), null);
    assert.equal(parseOsRelease('ID=alpine\nVERSION_ID=3.20.0\n'), null);
  });
});

describe('detectNode', () => {
  it('asks pveversion and reads the session from the environment', async () => {
    const pveversion: Exec = {
      run: async (argv): Promise<ExecResult> => ({
        argv: [...argv],
        exitCode: 0,
        stdout: 'pve-manager/9.1.2/9d436f37a0ac4172 (running kernel: 6.17.2-1-pve)\n',
        stderr: '',
      }),
    };
    const exec = new RecordingExec(pveversion);
    const node = await detectNode(exec, { SSH_CONNECTION: '192.0.2.50 53422 192.0.2.10 22', TERM: 'xterm', PVE_BASELINE_REHEARSAL: '1' });
    assert.deepEqual(exec.argvs, [['pveversion']]);
    assert.deepEqual(node.proxmox, { version: '9.1.2', major: 9, line: 'pve-manager/9.1.2/9d436f37a0ac4172 (running kernel: 6.17.2-1-pve)' });
    assert.equal(node.session.kind, 'ssh');
    assert.equal(node.term, 'xterm');
    assert.equal(node.rehearsal, true);
    assert.equal(node.isRoot, process.getuid?.() === 0);
    assert.match(node.bootId, /^[0-9a-f-]{36}$|^unknown$/);
  });

  it('says "not a Proxmox node" when pveversion is missing or fails', async () => {
    for (const exec of [
      { run: async (): Promise<ExecResult> => Promise.reject(new Error('spawn failed')) },
      { run: async (argv: readonly string[]): Promise<ExecResult> => ({ argv: [...argv], exitCode: 127, stdout: '', stderr: '', notFound: true }) },
    ]) {
      const node = await detectNode(exec, {});
      assert.equal(node.proxmox, null);
      assert.equal(node.rehearsal, false);
      assert.match(describeNode(node), / · not a Proxmox node · /);
    }
  });

  it('describes a node in one line', () => {
    assert.equal(describeNode(testNode), 'pve1 · Proxmox VE 9.1.2 · Debian 13');
    assert.equal(describeNode({ ...testNode, proxmox: null, debian: null }), 'pve1 · not a Proxmox node · unknown OS');
    assert.equal(describeNode({ ...testNode, debian: { codename: 'forky', version: '' } }), 'pve1 · Proxmox VE 9.1.2 · Debian forky');
  });
});

describe('the SSH session behind sudo', () => {
  // sudo resets the environment; the login shell above it still holds SSH_CONNECTION.
  const procs: Record<number, { stat: string; environ: string }> = {
    300: { stat: '300 (sudo) S 200 300 200 34816', environ: 'HOME=/root\0TERM=xterm\0' },
    200: { stat: '200 (bash) S 150 200 200 34816', environ: 'USER=alice\0SSH_CONNECTION=192.0.2.50 50412 192.0.2.10 22\0' },
    150: { stat: '150 (sshd-session: alice@pts/0) S 1 150 150 0', environ: '' },
  };
  const read = (file: string) => {
    const m = /^\/proc\/(\d+)\/(stat|environ)$/.exec(file);
    const p = m ? procs[Number(m[1])] : undefined;
    return p ? p[m![2] as 'stat' | 'environ'] : null;
  };

  it('walks up the parents to the first SSH_CONNECTION', () => {
    assert.equal(ancestorSshConnection(300, read), '192.0.2.50 50412 192.0.2.10 22');
    assert.equal(ancestorSshConnection(150, read), undefined, 'none above the SSH daemon');
    assert.equal(ancestorSshConnection(999, read), undefined, 'a process that is gone');
  });

  it('detectSession uses it when the environment has none', () => {
    const session = detectSession({ TERM: 'xterm' }, '/dev/pts/0', () => ancestorSshConnection(300, read));
    assert.deepEqual(session, { kind: 'ssh', clientAddress: '192.0.2.50', clientPort: 50412, serverAddress: '192.0.2.10', serverPort: 22 });
    assert.deepEqual(detectSession({ TERM: 'linux' }, '/dev/tty1', () => undefined), { kind: 'console', tty: '/dev/tty1' });
  });
});
