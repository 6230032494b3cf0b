/**
 * Issue 5's sshd model against the node's real OpenSSH 10: the supported
 * algorithms, the rendered drop-in accepted by `sshd -t`, `sshd -T` showing
 * every intended value (and the Match block for root from the cluster
 * network), then a competing drop-in that sorts first and wins.
 * Never reloads or restarts ssh; removes what it wrote.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Exec } from '../../src/system/exec.ts';
import {
  DROP_IN,
  compareIntent,
  describeWinner,
  intentSettings,
  readConfigFiles,
  readEffective,
  readSupported,
  renderDropIn,
  whoWins,
  type SshdIntent,
} from '../../src/ssh/sshd.ts';
import { labOrSkip } from './helpers.ts';
import type { Lab } from './lab.ts';

const lab = await labOrSkip();

function labExec(node: Lab): Exec {
  return {
    async run(argv) {
      const r = await node.exec(argv);
      return { argv: [...argv], exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

if (lab) {
  const exec = labExec(lab);
  const inNode = (p: string) => join(lab.rootDir, p);
  const OURS = inNode(DROP_IN);
  const COMPETITOR = inNode('/etc/ssh/sshd_config.d/00-aaa.conf');
  const before = existsSync(OURS) ? readFileSync(OURS) : null;
  const nodeFiles = { read: async (p: string) => (existsSync(inNode(p)) ? readFileSync(inNode(p), 'utf8') : null) };
  const list = async (dir: string) => readdirSync(inNode(dir));

  const cleanup = () => {
    rmSync(COMPETITOR, { force: true });
    if (before) writeFileSync(OURS, before);
    else rmSync(OURS, { force: true });
  };

  const MATCH_INTENT: SshdIntent = {
    admins: ['alice'],
    allow: { mode: 'users', names: [] },
    root: { no: true, matchAddresses: [`${lab.workstationAddress}/32`, '10.99.0.0/24'] },
    profile: 'strict',
  };
  const PLAIN_INTENT: SshdIntent = { admins: ['alice'], allow: { mode: 'groups', names: ['sudo'] }, root: 'prohibit-password', profile: 'compatible' };

  test('sshd model on the node', async (t) => {
    t.after(cleanup);
    const supported = await readSupported(exec);

    await t.test('readSupported sees OpenSSH 10 with mlkem and sntrup', () => {
      assert.equal(supported.version?.major, 10, supported.version?.text);
      for (const k of ['mlkem768x25519-sha256', 'sntrup761x25519-sha512', 'curve25519-sha256']) assert.ok(supported.kex.includes(k), k);
      assert.ok(supported.keySig.includes('rsa-sha2-512'));
      assert.ok(supported.cipher.includes('chacha20-poly1305@openssh.com'));
    });

    for (const intent of [MATCH_INTENT, PLAIN_INTENT]) {
      await t.test(`${intent.profile} profile, root ${typeof intent.root === 'string' ? intent.root : 'no + Match Address'}: sshd -t accepts, sshd -T shows every value`, async () => {
        const settings = intentSettings(intent, supported);
        writeFileSync(OURS, renderDropIn(settings, intent), { mode: 0o644 });
        const check = await lab.exec(['/usr/sbin/sshd', '-t']);
        assert.equal(check.exitCode, 0, check.stderr);
        const eff = await readEffective(exec);
        assert.ok(eff.ok, eff.ok ? '' : eff.error);
        assert.deepEqual(compareIntent(settings, eff.effective), []);
        const kex = eff.effective.get('kexalgorithms')![0]!;
        if (intent.profile === 'strict') assert.equal(kex, 'mlkem768x25519-sha256,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com');
        else assert.match(kex, /^mlkem768x25519-sha256,.*curve25519-sha256/);
        assert.equal(eff.effective.get('requiredrsasize')?.[0], intent.profile === 'strict' ? '3072' : '2048');

        if (intent === MATCH_INTENT) {
          // root from the workstation (in the Match Address list) may use a key; from elsewhere not at all
          const inside = await readEffective(exec, { user: 'root', addr: lab.workstationAddress, host: 'workstation' });
          assert.ok(inside.ok);
          assert.deepEqual(compareIntent(settings, inside.effective, 'match'), []);
          const outside = await readEffective(exec, { user: 'root', addr: '192.0.2.9', host: 'elsewhere' });
          assert.ok(outside.ok);
          assert.deepEqual(outside.effective.get('permitrootlogin'), ['no']);
          assert.deepEqual(compareIntent(settings, outside.effective, 'match'), [{ keyword: 'permitrootlogin', wanted: 'prohibit-password', actual: 'no' }]);
        }
        // The installer's "PermitRootLogin yes" and Debian's "X11Forwarding yes" in sshd_config lose to the drop-in.
        const files = await readConfigFiles(nodeFiles, list);
        assert.equal(files[0]?.path, '/etc/ssh/sshd_config');
        assert.equal(whoWins('PermitRootLogin', files).winner?.path, DROP_IN);
        assert.equal(whoWins('X11Forwarding', files).winner?.path, DROP_IN);
      });
    }

    await t.test('a competing 00-aaa.conf with PasswordAuthentication yes wins: compareIntent and whoWins say so', async () => {
      const settings = intentSettings(MATCH_INTENT, supported);
      writeFileSync(OURS, renderDropIn(settings, MATCH_INTENT), { mode: 0o644 });
      writeFileSync(COMPETITOR, '# planted by test/lab/80-sshd-model\nPasswordAuthentication yes\n', { mode: 0o644 });
      const check = await lab.exec(['/usr/sbin/sshd', '-t']);
      assert.equal(check.exitCode, 0, check.stderr);
      const eff = await readEffective(exec);
      assert.ok(eff.ok);
      assert.deepEqual(compareIntent(settings, eff.effective), [{ keyword: 'passwordauthentication', wanted: 'no', actual: 'yes' }]);
      const files = await readConfigFiles(nodeFiles, list);
      const w = whoWins('passwordauthentication', files);
      assert.equal(w.winner?.path, '/etc/ssh/sshd_config.d/00-aaa.conf');
      assert.equal(w.winner?.line, 2);
      assert.match(describeWinner(w), /00-aaa\.conf:2 \("yes"\)/);
    });

    await t.test('an invalid drop-in: readEffective returns sshd\'s error', async () => {
      writeFileSync(COMPETITOR, 'NoSuchKeyword yes\n', { mode: 0o644 });
      const eff = await readEffective(exec);
      assert.equal(eff.ok, false);
      assert.match(eff.ok ? '' : eff.error, /00-aaa\.conf.*NoSuchKeyword|Bad configuration option/i);
    });

    await t.test('cleanup leaves the node as it was', () => {
      cleanup();
      assert.equal(existsSync(COMPETITOR), false);
      assert.equal(existsSync(OURS), before !== null);
    });
  });
}
