/**
 * The access-policy document on the lab node after the admin and sshd steps: it lists
 * the admin, its role and effective privileges, the SSH policy as sshd -T
 * reports it and the change log; it passes markdownlint; and none of the
 * secrets seeded into the node and the answers reaches it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lint } from 'markdownlint/promise';
import { generateKeyPair } from '../../src/ssh/keys.ts';
import { installBundle, labOrSkip, sh } from './helpers.ts';

const lab = await labOrSkip();
const operator = await generateKeyPair('ed25519', { comment: 'operator@laptop' });
const PASSWORD = 'seeded-password-never-in-docs';
const TOTP_SECRET = 'JBSWY3DPEHPK3PXPSEEDEDTOTP2FAXYZ';

if (lab) {
  test('the document after the admin and sshd steps: admin, role, privileges, SSH policy, change log; no secret', async () => {
    await lab.reset();
    await installBundle(lab);
    writeFileSync(
      join(lab.rootDir, 'root/answers.yml'),
      [
        'admin-account:',
        '  name: alice',
        '  role: Administrator',
        `  password: ${JSON.stringify(PASSWORD)}`,
        'ssh-key:',
        '  keys: |',
        `    ${operator.public.trim()}`,
        'break-glass:',
        '  wanted: yes',
        '  name: breakglass',
        'sshd-hardening:',
        '  revert_seconds: 120',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const applied = await lab.exec(['pve-baseline', 'apply', '--answers', '/root/answers.yml', '--yes', '--only', 'admin-account,ssh-key,break-glass,sshd-hardening']);
    assert.equal(applied.exitCode, 0, applied.stdout + applied.stderr);
    assert.match(applied.stdout, /AWAITING CONFIRMATION/);
    const confirmed = await lab.ssh({ user: 'alice', privateKey: operator.private, input: `${PASSWORD}\n` }, "sudo -S -p '' pve-baseline confirm");
    assert.equal(confirmed.exitCode, 0, confirmed.stderr);

    // Secrets the document must never show: a token value and a TOTP secret.
    const token = JSON.parse(await sh(lab, 'pveum user token add alice@pam ci --privsep 1 --comment "CI runner" --output-format json')) as { value: string };
    assert.match(token.value, /^[0-9a-f-]{36}$/);
    const uri = `otpauth://totp/Proxmox%20VE:alice%40pam?secret=${TOTP_SECRET}&digits=6&algorithm=SHA1&period=30&issuer=Proxmox%20VE`;
    writeFileSync(join(lab.rootDir, 'etc/pve/priv/tfa.cfg'), JSON.stringify({ users: { 'alice@pam': { totp: [{ id: 'seed', description: 'phone', created: 1, entry: uri }] } } }));
    // What Proxmox's TFA API does next: mark the user as having TFA entries (keys field "x").
    const userCfg = join(lab.rootDir, 'etc/pve/user.cfg');
    const marked = readFileSync(userCfg, 'utf8').replace(/^user:alice@pam:.*$/m, (line) => {
      const fields = line.split(':');
      fields[8] = 'x';
      return fields.join(':');
    });
    writeFileSync(userCfg, marked);

    const docs = await lab.exec(['pve-baseline', 'docs', '--out', '/root/pve-baseline/policy.md']);
    assert.equal(docs.exitCode, 0, docs.stderr);
    const file = join(lab.rootDir, 'root/pve-baseline/policy.md');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const doc = readFileSync(file, 'utf8');

    assert.match(doc, /^# Access policy: pve1$/m);
    assert.match(doc, /\| alice \| 1000 \| \/bin\/bash \| yes \| set \|/);
    assert.match(doc, /\| breakglass \| 1001 \| \/bin\/bash \| yes \| none \(cannot log in with one\) \|/);
    assert.match(doc, /\| alice@pam \| pam \| yes \| never \| - \| yes \|/, 'alice has 2FA');
    assert.match(doc, /\| breakglass@pam \| pam \| no \|/);
    assert.match(doc, /\| alice@pam \| yes \| Administrator \(\d+\) \|/);
    assert.match(doc, /- `alice@pam` on `\/`: .*Permissions\.Modify.*Sys\.Modify/);
    assert.match(doc, /\| alice@pam!ci \(token, separated\) \|/);
    assert.match(doc, /\| alice@pam!ci \| alice@pam \| yes \| never \| - \| CI runner \|/);
    // The SSH policy is what sshd -T says after the hardening.
    const sshdT = await sh(lab, 'sshd -T');
    const permit = sshdT.match(/^permitrootlogin (\S+)$/m)![1]!;
    assert.equal(permit, 'without-password');
    assert.match(doc, new RegExp(`\\| \`permitrootlogin\` \\| root logins \\| ${permit} \\|`));
    assert.match(doc, /\| `passwordauthentication` \| [^|]+ \| no \|/);
    assert.match(doc, /\| `allowusers` \| [^|]+ \| alice root \|/);
    assert.match(doc, /\| [\d-]+ [\d:]+ \| sshd-hardening \| verified \| \/etc\/ssh\/sshd_config\.d\/00-pve-baseline\.conf \(\(did not exist before\)\) \|/);
    assert.match(doc, /\| `loglevel` \| log detail/);
    assert.match(doc, /\| [\d-]+ [\d:]+ \| admin-account \| verified \|/);
    assert.match(doc, /\| [\d-]+ [\d:]+ \| ssh-key \| verified \| \/home\/alice\/\.ssh\/authorized_keys \(\(did not exist before\)\) \|/);
    assert.match(doc, /Account: `breakglass` \(Linux\) and `breakglass@pam` \(Proxmox VE\)/);

    for (const secret of [PASSWORD, TOTP_SECRET, token.value, operator.private.split('\n')[1]!]) {
      assert.ok(!doc.includes(secret), `a secret reached the document: ${secret.slice(0, 8)}…`);
    }
    const result = await lint({ strings: { doc }, config: { default: true, MD013: false } });
    assert.deepEqual(result.doc, []);
  });
}
