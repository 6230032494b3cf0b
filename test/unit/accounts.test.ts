import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adminNameProblem, CRYPT_HASH, findAccount, memberOf, parseGroup, parsePasswd, parseShadow } from '../../src/system/accounts.ts';

const PASSWD = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
carol:x:1000:1000:Carol,,,:/home/carol:/bin/bash
`;

test('admin names: Linux and Proxmox rules, each refusal saying why', () => {
  const users = parsePasswd(PASSWD);
  const cases: [string, string | undefined][] = [
    ['alice', undefined],
    ['a-l_i3e', undefined],
    ['carol', undefined], // an existing personal account is adopted
    ['root', 'root is the account this step replaces for daily work; choose a personal name (e.g. alice)'],
    ['daemon', 'is the system account daemon (uid 1); choose a personal name'],
    ['www-data', 'is the system account www-data (uid 33); choose a personal name'],
    ['nobody', 'is the system account nobody; choose a personal name'],
    ['sshd', 'is a name Debian or Proxmox reserves for a service account; choose a personal name'],
    ['systemd-oom', 'is a name Debian or Proxmox reserves for a service account; choose a personal name'],
    ['Alice', 'must be lower case: Linux account names are, and the Proxmox user would be Alice@pam exactly as typed'],
    ['al ice', 'must not contain spaces'],
    ['-alice', 'must not start with a dash (programs would read it as an option)'],
    ['a'.repeat(33), 'is 33 characters long; Linux allows at most 32'],
    ['1alice', 'may use lower-case letters, digits, - and _, and must start with a letter'],
    ['al:ice', 'may use lower-case letters, digits, - and _, and must start with a letter'],
    ['al/ice', 'may use lower-case letters, digits, - and _, and must start with a letter'],
  ];
  for (const [name, problem] of cases) assert.equal(adminNameProblem(name, users), problem, name);
});

test('shadow states, group membership, crypt hashes', () => {
  const states = parseShadow('alice:$y$j9T$abc$def:19000:0:99999:7:::\nbob:!$6$x$y:1::::::\nsvc:*:1::::::\nnew:!:1::::::\nopen::1::::::\n');
  assert.deepEqual(Object.fromEntries(states), { alice: 'set', bob: 'locked', svc: 'none', new: 'none', open: 'empty' });
  const accounts = { users: parsePasswd(PASSWD), groups: parseGroup('sudo:x:27:alice,bob\ncarol:x:1000:\n'), passwords: states };
  assert.equal(memberOf(accounts, 'alice', 'sudo'), true);
  assert.equal(memberOf(accounts, 'carol', 'sudo'), false);
  assert.equal(memberOf(accounts, 'carol', 'carol'), true, 'primary group counts');
  assert.ok(CRYPT_HASH.test('$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7'));
  assert.ok(CRYPT_HASH.test('$6$rounds=5000$saltsalt$hash'));
  assert.ok(!CRYPT_HASH.test('$1$md5salt$weak'), 'MD5 crypt is not accepted');
  assert.ok(!CRYPT_HASH.test('plain password'));
});

test('findAccount: the account, its home and its key file, in one place', async () => {
  const files = {
    read: async (p: string) =>
      p === '/etc/passwd' ? 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/srv/home/alice:/bin/bash\n' : p === '/etc/group' ? 'sudo:x:27:alice\n' : null,
  };
  const { account, accounts } = await findAccount(files, 'alice');
  assert.deepEqual(account, {
    name: 'alice', uid: 1000, gid: 1000, gecos: 'Alice', home: '/srv/home/alice', shell: '/bin/bash',
    sshDir: '/srv/home/alice/.ssh', authorizedKeys: '/srv/home/alice/.ssh/authorized_keys',
  });
  assert.equal(memberOf(accounts, 'alice', 'sudo'), true);
  assert.equal((await findAccount(files, 'bob')).account, undefined);
  assert.equal((await findAccount(files, undefined)).account, undefined);
});
