import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lint } from 'markdownlint/promise';
import { renderAccessPolicy } from '../../src/report/access-policy.ts';
import { parseBridges, parseSshdValues, parseStorage, type PolicyFacts } from '../../src/report/facts.ts';
import { accessMatrix } from '../../src/pve/permissions.ts';
import { parseUserCfg } from '../../src/pve/user-cfg.ts';

const USER_CFG = `user:alice@pam:1:0:::alice@example.com:Alice Admin::
user:breakglass@pam:0:0::::pve-baseline break-glass account (disabled until needed)::
user:mon@pve:1:1893456000::::monitoring::
token:mon@pve!grafana:0:1:dashboards:
user:root@pam:1:0:::admin@example.com:::

group:ops:mon@pve::

pool:web::100,101::

acl:1:/:alice@pam,breakglass@pam:Administrator:
acl:1:/pool/web:@ops:PVEVMUser:
acl:1:/:mon@pve!grafana:PVEAuditor:
acl:1:/:mon@pve:PVEAuditor:
`;

function facts(): PolicyFacts {
  const cfg = parseUserCfg(USER_CFG, { major: 9 }).cfg;
  return {
    node: {
      hostname: 'pve1',
      proxmox: '9.2.11',
      debian: '13 (trixie)',
      addresses: ['10.0.0.2/24 (vmbr0)'],
      bridges: parseBridges('auto vmbr0\niface vmbr0 inet static\n\taddress 10.0.0.2/24\n'),
      storage: parseStorage('dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\nlvmthin: local-lvm\n\tthinpool data\n\tcontent rootdir,images\n'),
    },
    linuxAdmins: [
      { name: 'root', uid: 0, shell: '/bin/bash', sudo: false, password: 'set' },
      { name: 'alice', uid: 1000, shell: '/bin/bash', sudo: true, password: 'set' },
      { name: 'breakglass', uid: 1001, shell: '/bin/bash', sudo: true, password: 'locked' },
    ],
    pveUsers: [
      { userid: 'alice@pam', realm: 'pam', enabled: true, expire: 0, groups: [], tfa: false, comment: 'Alice Admin' },
      { userid: 'mon@pve', realm: 'pve', enabled: true, expire: 1893456000, groups: ['ops'], tfa: false, comment: 'monitoring' },
      { userid: 'bob@pve', realm: 'pve', enabled: true, expire: 0, groups: [], tfa: true, comment: 'ask bob@example.com | ops' },
    ],
    tokens: [{ id: 'mon@pve!grafana', privsep: true, expire: 0, comment: 'dashboards' }],
    matrix: accessMatrix(cfg),
    ssh: { values: parseSshdValues('permitrootlogin prohibit-password\npasswordauthentication no\nallowgroups sudo root\nloglevel VERBOSE\nkexalgorithms mlkem768x25519-sha256,sntrup761x25519-sha512@openssh.com\nciphers chacha20-poly1305@openssh.com\n') },
    breakGlass: 'breakglass',
    changes: [{ step: 'sysctl', status: 'verified', updatedAt: '2026-11-22T10:00:00.000Z', files: [{ path: '/etc/sysctl.d/90-pve-baseline.conf', backup: '(did not exist before)' }] }],
    evidence: ['read /etc/pve/user.cfg', 'sshd -T'],
  };
}

const META = { date: '2026-11-22', version: '0.1.0' };

test('the document has every section, from the facts', () => {
  const doc = renderAccessPolicy(facts(), META);
  for (const heading of ['# Access policy: pve1', '## The node', '## Administrative accounts', '## Root', '## Access-control matrix', '## API tokens', '## SSH policy', '## Firewall', '## Updates', '## Backups', '## Recovery procedures', '### Break-glass account', '## Audit notes', '## Change log', '## Evidence']) {
    assert.ok(doc.includes(`\n${heading}\n`) || doc.startsWith(`${heading}\n`), heading);
  }
  assert.match(doc, /\| alice@pam \| yes \| Administrator \(\d+\) \|/);
  assert.match(doc, /\| mon@pve!grafana \(token, separated\) \| yes \| PVEAuditor \(7\) \|/);
  assert.match(doc, /\| mon@pve \| pve \| yes \| 2030-01-01 \| ops \| no \| monitoring \|/);
  assert.match(doc, /\| `permitrootlogin` \| root logins \| prohibit-password \|/);
  assert.match(doc, /- SSH: `PermitRootLogin prohibit-password`: root may log in over SSH with a key only/);
  assert.match(doc, /2\. Set a password and unlock it: passwd breakglass\./);
  assert.match(doc, /\| Storage \| local \(dir: iso,vztmpl,backup\), local-lvm \(lvmthin: rootdir,images\) \|/);
  assert.match(doc, /\| 2026-11-22 10:00:00 \| sysctl \| verified \| \/etc\/sysctl\.d\/90-pve-baseline\.conf \(\(did not exist before\)\) \|/);
  assert.match(doc, /## Firewall\n\nNot configured yet by pve-baseline\./);
  // Addresses and algorithm names read literally (markdownlint would take them for links).
  assert.match(doc, /\| `ask bob@example\.com \\\| ops` \|/);
  assert.match(doc, /\| `mlkem768x25519-sha256,sntrup761x25519-sha512@openssh\.com` \|/);
});

test('the document passes markdownlint', async () => {
  const result = await lint({
    strings: { doc: renderAccessPolicy(facts(), META) },
    // Tables and long facts are read rendered; only long prose would hurt, and that is kept in check by review.
    config: { default: true, MD013: false },
  });
  assert.deepEqual(result.doc, []);
});

test('deterministic: the same state gives the same document apart from its date', () => {
  const a = renderAccessPolicy(facts(), META);
  const b = renderAccessPolicy(facts(), { ...META, date: '2027-01-01' });
  assert.equal(a, renderAccessPolicy(facts(), META));
  assert.equal(a.replaceAll('2026-11-22 from', 'X from'), b.replaceAll('2027-01-01 from', 'X from'));
});
