import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { lint } from 'markdownlint/promise';
import { describeProof, renderAccessPolicy } from '../../src/report/access-policy.ts';
import { collectPolicyFacts, collectStepSections, parseBridges, parseStorage, type PolicyFacts } from '../../src/report/facts.ts';
import { code, numbered, paragraph, table, type DocumentSection } from '../../src/report/section.ts';
import type { StepRecord } from '../../src/engine/journal.ts';
import type { AnyStep, StepContext } from '../../src/engine/step.ts';
import { accessMatrix } from '../../src/pve/permissions.ts';
import { parseUserCfg } from '../../src/pve/user-cfg.ts';
import { generateKeyPair } from '../../src/ssh/keys.ts';
import { CATALOGUE } from '../../steps/index.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { scriptedExec } from '../fixtures/scripted-exec.ts';
import { testNode } from '../fixtures/node.ts';

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

/** Two steps' sections as data, the way a step's `document` hook gives them. */
const SECTIONS: PolicyFacts['sections'] = [
  {
    stepId: 'ssh-key',
    section: {
      heading: 'SSH keys',
      blocks: [
        paragraph('The keys that log in over SSH.'),
        table(['Account', 'Fingerprint', 'Comment'], [['alice', 'SHA256:abc', 'ask bob@example.com | ops']]),
      ],
      evidence: ['read /home/alice/.ssh/authorized_keys'],
    },
  },
  {
    stepId: 'break-glass',
    section: {
      heading: 'Break-glass account',
      blocks: [paragraph(`Account: ${code('breakglass')}. To use it:`), numbered(['Log in on the console.', 'Set a password and unlock it: passwd breakglass.'])],
    },
  },
];

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
    sections: SECTIONS,
    changes: [
      { step: 'sysctl', status: 'verified', updatedAt: '2026-11-22T10:00:00.000Z', files: [{ path: '/etc/sysctl.d/90-pve-baseline.conf', backup: '(did not exist before)' }] },
      {
        step: 'sshd-hardening',
        status: 'verified',
        updatedAt: '2026-11-22T10:05:00.000Z',
        files: [{ path: '/etc/ssh/sshd_config.d/00-pve-baseline.conf', backup: '(did not exist before)' }],
        proof: { by: 'login', user: 'alice', from: '10.0.0.5', fingerprint: 'SHA256:Xq0n6C1Qx/2n+f3d8Vb1kZcT9xY7a6b5c4d3e2f1g0h', at: '2026-11-22T10:04:31.512Z' },
      },
    ],
    evidence: ['read /etc/pve/user.cfg', 'read /home/alice/.ssh/authorized_keys'],
  };
}

const META = { date: '2026-11-22', version: '0.1.0' };
const LINT_CONFIG = { default: true, MD013: false };

const headings = (doc: string) => doc.split('\n').filter((l) => /^#{1,3} /.test(l));

test('the report writes its own parts and the steps\' sections between them, in the order given', () => {
  const doc = renderAccessPolicy(facts(), META);
  assert.deepEqual(headings(doc), [
    '# Access policy: pve1',
    '## The node',
    '## Administrative accounts',
    '### Linux accounts that can log in or use sudo',
    '### Proxmox VE users',
    '## Access-control matrix',
    '## API tokens',
    '## SSH keys',
    '## Break-glass account',
    '## Recovery procedures',
    '## Change log',
    '## Evidence',
  ]);
  assert.match(doc, /\| alice@pam \| yes \| Administrator \(\d+\) \|/);
  assert.match(doc, /\| mon@pve!grafana \(token, separated\) \| yes \| PVEAuditor \(7\) \|/);
  assert.match(doc, /\| mon@pve \| pve \| yes \| 2030-01-01 \| ops \| no \| monitoring \|/);
  assert.match(doc, /\| Storage \| local \(dir: iso,vztmpl,backup\), local-lvm \(lvmthin: rootdir,images\) \|/);
  assert.match(doc, /\| 2026-11-22 10:00:00 \| sysctl \| verified \| \/etc\/sysctl\.d\/90-pve-baseline\.conf \(\(did not exist before\)\) \| - \|/);
  assert.match(doc, /## Break-glass account\n\nAccount: `breakglass`\. To use it:\n\n1\. Log in on the console\.\n2\. Set a password and unlock it: passwd breakglass\.\n\n## Recovery procedures/);
  // Addresses read literally in a step's table cell too (markdownlint would take them for links), and a pipe stays in its cell.
  assert.match(doc, /\| alice \| SHA256:abc \| `ask bob@example\.com \\\| ops` \|/);
  assert.match(doc, /- `read \/home\/alice\/\.ssh\/authorized_keys`\n/);
  // Nothing the report cannot know: no placeholder for steps that do not exist yet.
  assert.doesNotMatch(doc, /Not configured yet|## Firewall|## SSH policy/);
});

test('the change log names who proved access to a guarded change', () => {
  const doc = renderAccessPolicy(facts(), META);
  assert.match(
    doc,
    /\| 2026-11-22 10:05:00 \| sshd-hardening \| verified \| \/etc\/ssh\/sshd_config\.d\/00-pve-baseline\.conf \(\(did not exist before\)\) \| proved by alice from 10\.0\.0\.5 with SHA256:Xq0n6C1Qx\/2n\+f3d8Vb1kZcT9xY7a6b5c4d3e2f1g0h at 2026-11-22 10:04:31 \|/,
  );
  assert.equal(describeProof({ by: 'confirm', user: 'alice', from: '2001:db8::5', at: '2026-11-22T10:04:31Z' }), 'proved by alice from 2001:db8::5 running pve-baseline confirm at 2026-11-22 10:04:31');
  assert.equal(describeProof({ by: 'console', at: '2026-11-22T10:04:31.000Z' }), 'kept on the console without a second login at 2026-11-22 10:04:31');
});

test('the document passes markdownlint', async () => {
  const result = await lint({ strings: { doc: renderAccessPolicy(facts(), META) }, config: LINT_CONFIG });
  assert.deepEqual(result.doc, []);
});

test('deterministic: the same state gives the same document apart from its date', () => {
  const a = renderAccessPolicy(facts(), META);
  const b = renderAccessPolicy(facts(), { ...META, date: '2027-01-01' });
  assert.equal(a, renderAccessPolicy(facts(), META));
  assert.equal(a.replaceAll('2026-11-22 from', 'X from'), b.replaceAll('2027-01-01 from', 'X from'));
});

test('a heading a step repeats (its own or the report\'s) gets the step id, so every heading stays unique', async () => {
  const clash = (stepId: string, heading: string) => ({ stepId, section: { heading, blocks: [paragraph('x')] } });
  const doc = renderAccessPolicy({ ...facts(), sections: [clash('a', 'Change log'), clash('b', 'Rules'), clash('c', 'Rules')] }, META);
  assert.deepEqual(headings(doc).filter((h) => /Rules|Change log/.test(h)), ['## Change log (a)', '## Rules', '## Rules (c)', '## Change log']);
  assert.deepEqual((await lint({ strings: { doc }, config: LINT_CONFIG })).doc, []);
});

test('src/report imports nothing from steps/', async () => {
  const dir = new URL('../../src/report/', import.meta.url);
  for (const name of await readdir(dir)) {
    const text = await readFile(new URL(name, dir), 'utf8');
    assert.doesNotMatch(text, /from '[./]*\/steps\//, name);
  }
});

// --- the steps' own sections, assembled --------------------------------------

const quietCtx = (exec = scriptedExec(), files = new MemoryFiles()): StepContext => ({
  exec,
  files,
  node: testNode,
  log: () => undefined,
  answersOf: () => ({}),
  journalRecords: () => ({}),
});

/** A step with nothing but an id and a document hook, as a new step (the firewall, say) would be. */
function fakeStep(id: string, document?: AnyStep['document'], requires?: AnyStep['requires']): AnyStep {
  return {
    id,
    title: `Step ${id}`,
    summary: '',
    scope: 'node',
    risk: 'safe',
    probe: async () => ({}),
    plan: () => [],
    verify: async () => [],
    ...(document ? { document } : {}),
    ...(requires ? { requires } : {}),
  };
}

test('sections come in catalogue order, with the journal\'s answers for their step; a step the report never heard of needs no change in src/report', async () => {
  const seen: Record<string, unknown> = {};
  const section = (heading: string): DocumentSection => ({ heading, blocks: [paragraph(`${heading} text`)], evidence: [`read /etc/${heading.toLowerCase()}`] });
  const firewall = fakeStep('firewall', async (_ctx, answers) => {
    seen.firewall = answers;
    return { ...section('Firewall'), blocks: [table(['Rule', 'From'], [['SSH', '10.0.0.0/8']])] };
  });
  const steps = [
    fakeStep('first', async () => section('First')),
    fakeStep('silent'),
    firewall,
    fakeStep('nothing-to-say', async () => undefined),
    fakeStep('elsewhere', async () => section('Elsewhere'), () => 'needs a Proxmox VE node'),
    fakeStep('broken', async () => {
      throw new Error('pveum user list failed: `ipcc_send_rec` *timeout*\nsecond line');
    }),
    fakeStep('last', async () => section('Last')),
  ];
  const records = { firewall: { status: 'verified', answers: { policy: 'drop' }, updatedAt: '2026-11-22T10:00:00.000Z', bootId: 'b', applied: [], history: [] } } as Record<string, StepRecord>;
  const sections = await collectStepSections(quietCtx(), steps, records);
  assert.deepEqual(sections.map((s) => [s.stepId, s.section.heading]), [
    ['first', 'First'],
    ['firewall', 'Firewall'],
    ['broken', 'Step broken'],
    ['last', 'Last'],
  ]);
  // The step is handed the answers it was given, kept as the journal has them (a bare step keeps none it does not ask).
  assert.deepEqual(seen.firewall, {});
  assert.equal(sections[2]!.section.blocks[0]!.kind === 'paragraph' && sections[2]!.section.blocks[0]!.text, 'pve-baseline could not read this part from the node: pveum user list failed: \\`ipcc\\_send\\_rec\\` \\*timeout\\*');

  const files = new MemoryFiles({ '/etc/passwd': 'root:x:0:0:root:/root:/bin/bash\n', '/etc/group': 'root:x:0:\n', '/etc/shadow': 'root:$y$j9T$abc:19000:0:99999:7:::\n' });
  const policy = await collectPolicyFacts({ exec: scriptedExec(), files, node: { ...testNode, proxmox: null } }, steps, records, '/var/lib/pve-baseline/journal.json');
  const doc = renderAccessPolicy(policy, META);
  const order = headings(doc).map((h) => h.replace(/^#+ /, ''));
  assert.deepEqual(order.slice(order.indexOf('API tokens') + 1, order.indexOf('Recovery procedures')), ['First', 'Firewall', 'Step broken', 'Last']);
  assert.match(doc, /## Firewall\n\n\| Rule \| From \|\n\| --- \| --- \|\n\| SSH \| 10\.0\.0\.0\/8 \|\n/);
  assert.ok(policy.evidence.includes('read /etc/firewall') && policy.evidence.includes('read /etc/first'), 'each section\'s evidence joins the list');
  assert.deepEqual((await lint({ strings: { doc }, config: LINT_CONFIG })).doc, []);
});

test('the real catalogue on a node: each step writes its own part, in catalogue order, and the document stays lint-clean', async () => {
  const key = (await generateKeyPair('ed25519', { comment: 'alice@laptop' })).public.trim();
  const options = 'from="10.0.0.0/8",command="/usr/local/bin/backup --dir /srv",no-pty';
  const files = new MemoryFiles({
    '/etc/passwd': 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice Admin:/home/alice:/bin/bash\nbreakglass:x:1001:1001:pve-baseline break-glass account (disabled until needed):/home/breakglass:/bin/bash\n',
    '/etc/group': 'root:x:0:\nsudo:x:27:alice,breakglass\nalice:x:1000:\nbreakglass:x:1001:\n',
    '/etc/shadow': 'root:$y$j9T$abc:19000:0:99999:7:::\nalice:$y$j9T$def:19000:0:99999:7:::\nbreakglass:!$y$j9T$ghi:19000:0:99999:7:::\n',
    '/etc/pve/user.cfg': USER_CFG,
    '/home/alice/.ssh/authorized_keys': `${options} ${key}\n`,
    '/etc/pve/priv/authorized_keys': 'ssh-rsa AAAAnot-a-key root@pve1\n',
    '/root/.ssh/authorized_keys': { symlink: '/etc/pve/priv/authorized_keys' },
    '/etc/ssh/sshd_config.d/00-pve-baseline.conf': 'PermitRootLogin prohibit-password\n',
    '/etc/sysctl.d/90-pve-baseline.conf': '# Written by pve-baseline\n',
    '/proc/sys/kernel/kptr_restrict': '2\n',
    '/proc/sys/kernel/dmesg_restrict': '0\n',
    '/etc/pve/firewall/cluster.fw': '[OPTIONS]\n\nenable: 1\npolicy_in: DROP\n\n[IPSET management]\n\n10.0.0.5 # pve-baseline: the operator address pve-baseline ran from\n\n[RULES]\n\nIN Ping(ACCEPT) -source +management # pve-baseline: ping from the management set\n\n',
    '/etc/pve/nodes/pve1/host.fw': '[OPTIONS]\n\nenable: 1\n\n',
  });
  const exec = scriptedExec([
    [['pve-firewall', 'localnet'], { stdout: 'local hostname: pve1\nlocal IP address: 192.0.2.10\nnetwork auto detect: 192.0.2.0/24\nusing detected local_network: 192.0.2.0/24\n' }],
    [['pve-firewall', 'compile'], { stdout: 'iptables cmdlist:\n' }],
    [['pve-firewall', 'status'], { stdout: 'Status: enabled/running\n' }],
    [['systemd-detect-virt', '--container'], { exitCode: 1, stdout: 'none\n' }],
    [['systemd-analyze', 'cat-config', 'systemd/journald.conf'], { stdout: '# /etc/systemd/journald.conf\n[Journal]\n' }],
    [(argv) => argv[0] === 'dpkg-query' && ['fail2ban', 'python3-systemd', 'auditd'].includes(argv.at(-1)!), { exitCode: 1, stderr: 'dpkg-query: no packages found matching\n' }],
    [['/usr/sbin/sshd', '-T'], { stdout: 'permitrootlogin prohibit-password\npasswordauthentication no\nallowgroups sudo root\nloglevel VERBOSE\nkexalgorithms mlkem768x25519-sha256,sntrup761x25519-sha512@openssh.com\nciphers chacha20-poly1305@openssh.com\n' }],
    [
      ['pveum', 'user', 'list', '--output-format', 'json'],
      { stdout: JSON.stringify([{ userid: 'alice@pam', enable: 1 }, { userid: 'breakglass@pam', enable: 0 }, { userid: 'root@pam', enable: 1 }]) },
    ],
    [['pveum', 'acl', 'list', '--output-format', 'json'], { stdout: JSON.stringify([{ path: '/', roleid: 'Administrator', type: 'user', ugid: 'alice@pam', propagate: 1 }]) }],
  ]);
  const record = (answers: StepRecord['answers'], extra: Partial<StepRecord> = {}): StepRecord => ({ status: 'verified', answers, updatedAt: '2026-11-22T10:00:00.000Z', bootId: 'b', applied: [], history: [], ...extra });
  const records: Record<string, StepRecord> = {
    'admin-account': record({ name: 'alice', role: 'Administrator', email: '', comment: '' }),
    'ssh-key': record({ keys: `${options} ${key}`, keep_options: true, also_root: false }),
    'break-glass': record({ wanted: true, name: 'breakglass' }),
    'sshd-hardening': record({}, { proof: { by: 'login', user: 'alice', from: '10.0.0.5', fingerprint: 'SHA256:abc', at: '2026-11-22T10:04:00.000Z' } }),
  };
  const policy = await collectPolicyFacts({ exec, files, node: testNode }, CATALOGUE, records, '/var/lib/pve-baseline/journal.json');
  exec.assertNoUnexpected();
  const doc = renderAccessPolicy(policy, META);

  const withHook = CATALOGUE.filter((s) => s.document).map((s) => s.id);
  assert.deepEqual(policy.sections.map((s) => s.stepId), withHook, 'one section per step with a hook, in catalogue order');
  const order = headings(doc).map((h) => h.replace(/^#+ /, ''));
  assert.deepEqual(order.slice(order.indexOf('API tokens') + 1, order.indexOf('Recovery procedures')), ['Named admin account', 'SSH keys', 'Break-glass account', 'SSH policy', 'Firewall', 'fail2ban', 'Two-factor login', 'Kernel and network settings', 'Audit log']);

  assert.match(doc, /- Datacenter firewall: on; node firewall on pve1: on\./);
  assert.match(doc, /\| cluster\.fw \| `IN Ping\(ACCEPT\) -source \+management` \| pve-baseline: ping from the management set \|/);
  assert.match(doc, /\| Roles on \/ \| Administrator: every privilege/);
  // The key's options as installed, the same text the ssh-key step's details screen shows.
  assert.ok(doc.includes(`| alice | ssh-ed25519 (256 bits) | ${policy.sections[1]!.section.blocks[1]!.kind === 'table' ? policy.sections[1]!.section.blocks[1]!.rows[0]![2] : ''} | alice@laptop | ${options} |`), 'the admin key row with its options');
  assert.match(doc, /1 line\(s\) of `\/root\/\.ssh\/authorized_keys` are not keys pve-baseline accepts/);
  assert.match(doc, /\| breakglass \(Linux\) \| disabled \(password locked\) \|/);
  assert.match(doc, /2\. Set a password and unlock it: passwd breakglass\./);
  assert.match(doc, /- Root over SSH: `PermitRootLogin prohibit-password`: root may log in over SSH with a key only/);
  assert.match(doc, /\| `permitrootlogin` \| root logins \| prohibit-password \|/);
  assert.match(doc, /\| `mlkem768x25519-sha256,sntrup761x25519-sha512@openssh\.com` \|/);
  assert.match(doc, /\| `kernel\.kptr_restrict` \| 2 \| 2 \| hide kernel addresses/);
  assert.match(doc, /\| `kernel\.dmesg_restrict` \| 1 \| 0 \(differs\) \|/);
  assert.match(doc, /\| `net\.ipv4\.tcp_syncookies` \| 1 \| not settable here \|/);
  assert.match(doc, /\| sshd-hardening \| verified \| - \| proved by alice from 10\.0\.0\.5 with SHA256:abc at 2026-11-22 10:04:00 \|/);
  assert.match(doc, /- `sshd -T`\n/);
  assert.doesNotMatch(doc, /\$y\$/, 'no password hash');
  assert.deepEqual((await lint({ strings: { doc }, config: LINT_CONFIG })).doc, []);
});
