/**
 * Issue 4 on the lab node: the admin account, the operator's key and the
 * break-glass account, applied headless (`pve-baseline apply --answers FILE
 * --yes --only ...`) on a fresh node, then proven from the workstation side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { generateKeyPair } from '../../src/ssh/keys.ts';
import { DSA_PUBLIC_KEY } from '../fixtures/dsa-key.ts';
import { installBundle, labOrSkip, sh } from './helpers.ts';
import type { Lab } from './lab.ts';

const lab = await labOrSkip();
const operator = await generateKeyPair('ed25519', { comment: 'operator@laptop' });
const rsa1024 = await generateKeyPair('rsa', { bits: 1024, comment: 'ancient' });
const PASSWORD = 'correct horse battery staple';
const STEPS = 'admin-account,ssh-key,break-glass';


/** Write an answers file into the node (root-only) and run apply with it. */
async function apply(node: Lab, yaml: string, extra: string[] = ['--yes']) {
  writeFileSync(join(node.rootDir, 'root/answers.yml'), yaml, { mode: 0o600 });
  return node.exec(['pve-baseline', 'apply', '--answers', '/root/answers.yml', '--only', STEPS, ...extra]);
}

const yamlString = (s: string) => JSON.stringify(s);
const block = (text: string) => `|\n${text.trim().split('\n').map((l) => `    ${l}`).join('\n')}`;

function answers(o: { name?: string; role?: string; password?: string | null; hash?: string; keys?: string; extraAdmin?: string; extraKey?: string; breakGlass?: string } = {}): string {
  return [
    'admin-account:',
    `  name: ${o.name ?? 'alice'}`,
    `  role: ${o.role ?? 'Administrator'}`,
    '  email: alice@example.com',
    '  comment: Alice Admin',
    ...(o.password === null ? [] : [`  password: ${yamlString(o.password ?? PASSWORD)}`]),
    ...(o.hash ? [`  password_hash: ${yamlString(o.hash)}`] : []),
    ...(o.extraAdmin ? [o.extraAdmin] : []),
    'ssh-key:',
    `  keys: ${o.keys ?? block(operator.public)}`,
    '  also_root: no',
    ...(o.extraKey ? [o.extraKey] : []),
    'break-glass:',
    ...(o.breakGlass ? [o.breakGlass] : ['  wanted: yes', '  name: breakglass']),
    '',
  ].join('\n');
}

/** What must not change when an answers file is refused. */
async function nodeState(node: Lab): Promise<string> {
  return sh(
    node,
    'sha256sum /etc/passwd /etc/shadow /etc/group /etc/gshadow /etc/pve/user.cfg /etc/pve/priv/authorized_keys; ls /home; ' +
      "dpkg-query -W -f='${db:Status-Status}\\n' sudo 2>&1; ls /var/lib/pve-baseline 2>&1 || true",
  );
}

if (lab) {
  test('bad input: every refusal names the field and what is wanted, and nothing on the node changes', async () => {
    await lab.reset();
    await installBundle(lab);
    const before = await nodeState(lab);
    const cases: [string, string, string][] = [
      // [what, answers file, the exact message]
      ['name root', answers({ name: 'root' }), 'admin-account.name: root is the account this step replaces for daily work; choose a personal name (e.g. alice)'],
      ['name of a system account', answers({ name: 'daemon' }), 'admin-account.name: is the system account daemon (uid 1); choose a personal name'],
      ['name www-data', answers({ name: 'www-data' }), 'admin-account.name: is the system account www-data (uid 33); choose a personal name'],
      ['name reserved for a service', answers({ name: 'ceph' }), 'admin-account.name: is a name Debian or Proxmox reserves for a service account; choose a personal name'],
      ['upper case', answers({ name: 'Alice' }), 'admin-account.name: must be lower case: Linux account names are, and the Proxmox user would be Alice@pam exactly as typed'],
      ['a space', answers({ name: '"al ice"' }), 'admin-account.name: must not contain spaces'],
      ['a leading dash', answers({ name: '"-alice"' }), 'admin-account.name: must not start with a dash (programs would read it as an option)'],
      ['33 characters', answers({ name: 'a'.repeat(33) }), 'admin-account.name: is 33 characters long; Linux allows at most 32'],
      ['a leading digit', answers({ name: '1alice' }), 'admin-account.name: may use lower-case letters, digits, - and _, and must start with a letter'],
      ['empty name', answers({ name: '""' }), 'admin-account.name: must not be empty'],
      ['unknown role', answers({ role: 'root' }), 'admin-account.role: must be one of: Administrator, PVEAdmin'],
      ['bad email', answers({ extraAdmin: '  email: not-an-email' }).replace('  email: alice@example.com\n', ''), 'admin-account.email: wants an email address such as alice@example.com'],
      ['colon in comment', answers().replace('Alice Admin', '"Alice: Admin"'), 'admin-account.comment: must not contain a colon'],
      ['short password', answers({ password: 'short' }), 'admin-account.password: must be at least 12 characters long'],
      ['MD5 hash', answers({ password: null, hash: '$1$salt$md5hashedpassword' }), 'admin-account.password_hash: wants a crypt(3) hash such as $y$j9T$... (make one with: mkpasswd -m yescrypt)'],
      ['unknown question', answers({ extraAdmin: '  shell: /bin/zsh' }), 'admin-account.shell: not a question of step admin-account (questions: name, role, email, comment, password_hash, password)'],
      ['DSA key', answers({ keys: block(DSA_PUBLIC_KEY) }), 'ssh-key.keys: line 1: ssh-dss (DSA) keys are refused: they are 1024-bit and OpenSSH 10 no longer accepts them; make an ed25519 key (ssh-keygen -t ed25519)'],
      ['RSA 1024', answers({ keys: block(rsa1024.public) }), 'ssh-key.keys: line 1: an RSA key of 1024 bits is refused: RSA needs at least 3072 bits (2048 is accepted with a warning); better, make an ed25519 key'],
      ['private key', answers({ keys: block(operator.private) }), 'ssh-key.keys: this is a PRIVATE key. It was not stored or sent anywhere; paste the public key instead (the .pub file, e.g. ~/.ssh/id_ed25519.pub). If you pasted it anywhere shared, consider it exposed and make a new one.'],
      ['garbage', answers({ keys: yamlString('my key is on my laptop') }), 'ssh-key.keys: line 1: not an SSH public key (wanted TYPE BASE64 [COMMENT], e.g. ssh-ed25519 AAAAC3Nz... alice@laptop)'],
      ['truncated key', answers({ keys: yamlString(operator.public.slice(0, 60)) }), 'ssh-key.keys: line 1: the ssh-ed25519 key data is damaged or cut off; copy the whole line again'],
      ['unknown key type', answers({ keys: yamlString('ssh-foo AAAAC3NzaC1lZDI1NTE5 x') }), 'ssh-key.keys: line 1: "ssh-foo" is not a key type OpenSSH accepts (ssh-ed25519, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com, ssh-rsa)'],
      ['a certificate', answers({ keys: yamlString('ssh-ed25519-cert-v01@openssh.com AAAA x') }), 'ssh-key.keys: line 1: ssh-ed25519-cert-v01@openssh.com is an SSH certificate; paste the plain public key instead'],
      ['missing key file', answers({ keys: '/root/nonexistent.pub' }), 'ssh-key.keys: no file /root/nonexistent.pub on this node; paste the key, or give the path of a .pub file here'],
      ["root's keys on a fresh node", answers({ keys: 'root' }), "ssh-key.keys: root has no keys of its own in /root/.ssh/authorized_keys (only the node's own key); paste yours instead"],
      ['keys as a list', answers({ keys: `[${yamlString(operator.public)}]` }), 'ssh-key.keys: wants text'],
      ['also_root maybe', answers({ extraKey: '  keep_options: sometimes' }), 'ssh-key.keep_options: wants yes or no'],
      ['break-glass named root', answers({ breakGlass: '  wanted: yes\n  name: root' }), 'break-glass.name: root is the account this step replaces for daily work; choose a personal name (e.g. alice)'],
      ['break-glass wanted 3', answers({ breakGlass: '  wanted: 3' }), 'break-glass.wanted: wants yes or no'],
      ['unknown step', `${answers()}firewal:\n  enable: yes\n`, 'firewal: not a step (steps: admin-account, ssh-key, break-glass, sshd-hardening, firewall, fail2ban, two-factor, repositories, upgrade, auto-updates, sysctl, audit-log, access-model, api-tokens, config-backup, access-policy)'],
    ];
    assert.ok(cases.length >= 25);
    for (const [what, yaml, message] of cases) {
      const r = await apply(lab, yaml);
      assert.equal(r.exitCode, 2, `${what}: exit ${r.exitCode}\n${r.stdout}${r.stderr}`);
      assert.ok(r.stderr.includes(`answers.yml:`) && r.stderr.includes(message), `${what}: wanted "${message}" in\n${r.stderr}`);
      assert.match(r.stderr, /nothing was changed/);
      assert.equal(r.stdout, '', `${what}: nothing ran`);
    }
    const syntax = await apply(lab, 'admin-account:\n  name: [alice\n');
    assert.equal(syntax.exitCode, 2);
    assert.match(syntax.stderr, /answers\.yml:\d+:\d+: not valid YAML/);
    assert.equal(await nodeState(lab), before, 'no account, group, password, Proxmox user, key or package changed');
  });

  test('the admin logs in with the key, sudo takes the password, Proxmox shows the user and the role', async () => {
    const r = await apply(lab, answers());
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Summary: 3 verified\./);
    assert.match(r.stdout, /Key 1: type ssh-ed25519, size 256 bits, fingerprint SHA256:\S+, comment operator@laptop/);

    const who = await lab.ssh({ user: 'alice', privateKey: operator.private }, 'id -un; id -Gn');
    assert.equal(who.exitCode, 0, who.stderr);
    assert.match(who.stdout, /^alice\n.*\bsudo\b/);
    const sudo = await lab.ssh({ user: 'alice', privateKey: operator.private, input: `${PASSWORD}\n` }, "sudo -S -p '' id -un");
    assert.equal(sudo.stdout.trim(), 'root', sudo.stderr);
    const wrong = await lab.ssh({ user: 'alice', privateKey: operator.private, input: 'not the password\n' }, "sudo -S -p '' -k id -un");
    assert.notEqual(wrong.exitCode, 0, 'sudo refuses a wrong password');

    const users = JSON.parse(await sh(lab, 'pveum user list --output-format json')) as { userid: string; enable: number; email?: string }[];
    assert.deepEqual(users.find((u) => u.userid === 'alice@pam'), { userid: 'alice@pam', enable: 1, expire: 0, email: 'alice@example.com', comment: 'Alice Admin', 'realm-type': 'pam' });
    const perms = JSON.parse(await sh(lab, 'pveum user permissions alice@pam --path / --output-format json')) as Record<string, Record<string, number>>;
    for (const priv of ['Sys.Modify', 'Permissions.Modify', 'VM.Allocate', 'Sys.PowerMgmt']) assert.equal(perms['/']![priv], 1, `${priv} on / (propagating)`);
    assert.equal(await sh(lab, "stat -c '%a %U:%G' /home/alice/.ssh /home/alice/.ssh/authorized_keys"), '700 alice:alice\n600 alice:alice\n');
    assert.equal((await sh(lab, 'cat /home/alice/.ssh/authorized_keys')).trim(), operator.public.trim());
  });

  test('the break-glass account exists, disabled: no password, no key, its Proxmox user off', async () => {
    assert.match(await sh(lab, 'passwd -S breakglass'), /^breakglass L /);
    assert.equal((await lab.exec(['test', '-e', '/home/breakglass/.ssh/authorized_keys'])).exitCode, 1);
    await assert.rejects(lab.ssh({ user: 'breakglass', password: '' }, 'true', ), /authentication/i);
    await assert.rejects(lab.ssh({ user: 'breakglass', privateKey: operator.private }, 'true'), /authentication/i);
    const users = JSON.parse(await sh(lab, 'pveum user list --output-format json')) as { userid: string; enable: number }[];
    assert.equal(users.find((u) => u.userid === 'breakglass@pam')?.enable, 0);
  });

  test('a second run plans nothing; no password is in the journal or the backups', async () => {
    const r = await apply(lab, answers());
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /Summary: 3 compliant\./);
    assert.doesNotMatch(r.stdout, /Plan:/);
    const found = await lab.exec(['grep', '-rl', 'correct horse', '/var/lib/pve-baseline']);
    assert.equal(found.exitCode, 1, `the password is in: ${found.stdout}`);
    const status = await sh(lab, 'pve-baseline status');
    assert.match(status, /admin-account +verified/);
    assert.match(status, /answers: name="alice", role="Administrator", email="alice@example.com", comment="Alice Admin"/);
  });

  test('PVEAdmin for an adopted account with a crypt hash; revert takes back only what the steps did', async () => {
    await lab.reset();
    await installBundle(lab);
    await sh(lab, 'useradd --create-home --shell /bin/bash carol');
    // The node has no openssl; the workstation makes the hash, as an operator would.
    const hash = (await execa('openssl', ['passwd', '-6', '-stdin'], { input: PASSWORD })).stdout.trim();
    const r = await apply(lab, answers({ name: 'carol', role: 'PVEAdmin', password: null, hash, breakGlass: '  wanted: no' }));
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /adopts the existing account carol \(uid 1000\) and gives it sudo/);
    assert.match(r.stdout, /run chpasswd --encrypted \(with input on stdin\)/);
    const perms = JSON.parse(await sh(lab, 'pveum user permissions carol@pam --path / --output-format json')) as Record<string, Record<string, number>>;
    assert.equal(perms['/']!['VM.Allocate'], 1);
    assert.equal(perms['/']!['Sys.Modify'], undefined, 'PVEAdmin has no Sys.Modify');
    const sudo = await lab.ssh({ user: 'carol', privateKey: operator.private, input: `${PASSWORD}\n` }, "sudo -S -p '' id -un");
    assert.equal(sudo.stdout.trim(), 'root', 'the hash was set as the password');

    assert.equal((await lab.exec(['pve-baseline', 'revert', 'ssh-key', '--yes'])).exitCode, 0);
    assert.equal(await sh(lab, 'cat /home/carol/.ssh/authorized_keys 2>/dev/null; ls -d /home/carol/.ssh 2>&1 || true'), 'ls: cannot access \'/home/carol/.ssh\': No such file or directory\n');
    const revert = await lab.exec(['pve-baseline', 'revert', 'admin-account', '--yes']);
    assert.equal(revert.exitCode, 0, revert.stdout + revert.stderr);
    assert.match(await sh(lab, 'id carol'), /uid=1000\(carol\)/, 'the adopted account stays');
    assert.doesNotMatch(await sh(lab, 'id -Gn carol'), /sudo/);
    assert.match(await sh(lab, 'passwd -S carol'), /^carol L /, 'and has no usable password again');
    const users = JSON.parse(await sh(lab, 'pveum user list --output-format json')) as { userid: string }[];
    assert.deepEqual(users.map((u) => u.userid), ['root@pam']);
    // apt-get remove (not purge): the package goes, its configuration files stay, as apt does.
    assert.equal((await lab.exec(['dpkg-query', '-W', '-f=${db:Status-Status}', 'sudo'])).stdout, 'config-files', 'sudo, installed by the step, is removed again');
  });
}
