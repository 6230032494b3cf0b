import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { lint } from 'markdownlint/promise';
import { describeProof, renderAccessPolicy, comparableDocument } from '../../src/report/access-policy.ts';
import { breakGlassFrom, collectPolicyFacts, collectStepSections, declaredAdminsFrom, parseBridges, parseStorage, type PolicyFacts } from '../../src/report/facts.ts';
import { code, numbered, paragraph, table, type DocumentSection } from '../../src/report/section.ts';
import type { StepRecord } from '../../src/engine/journal.ts';
import type { AnyStep, StepContext } from '../../src/engine/step.ts';
import { accessMatrix, privilegeMap } from '../../src/pve/permissions.ts';
import { accessFindings, accessSummary, privilegesByPath } from '../../src/pve/access-audit.ts';
import { parseUserCfg } from '../../src/pve/user-cfg.ts';
import { generateKeyPair } from '../../src/ssh/keys.ts';
import { renderSettings } from '../../src/backup/settings.ts';
import { backupSection } from '../../steps/config-backup.ts';
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
  // access-audit: the report's groups, pools and roles, privileges per path and findings.
  const access = { summary: accessSummary(cfg), privileges: privilegesByPath(cfg), findings: accessFindings(cfg, { now: NOW, declaredAdmins: ['alice@pam'], breakGlass: ['breakglass@pam'] }), declaredAdmins: ['alice@pam'], breakGlass: ['breakglass@pam'] };
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
    access,
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
/** The access audit's clock for these documents: 2026-11-22 00:00:00 UTC. */
const NOW = 1795305600;
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
    '## Groups, pools and roles',
    '### Groups',
    '### Pools',
    '### Roles',
    '## Access-control matrix',
    '### Privileges per user and path',
    '## Findings',
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
    '/etc/pve-baseline/config-backup.json': renderSettings({ version: 1, recipients: [], identityFile: '/var/lib/pve-baseline/config-backup/identity.txt', keep: 7, destination: { kind: 'path', dir: '/mnt/backup' }, schedule: 'weekly' }),
  });
  const exec = scriptedExec([
    [['pve-firewall', 'localnet'], { stdout: 'local hostname: pve1\nlocal IP address: 192.0.2.10\nnetwork auto detect: 192.0.2.0/24\nusing detected local_network: 192.0.2.0/24\n' }],
    [['pve-firewall', 'compile'], { stdout: 'iptables cmdlist:\n' }],
    [['pve-firewall', 'status'], { stdout: 'Status: enabled/running\n' }],
    [['systemd-detect-virt', '--container'], { exitCode: 1, stdout: 'none\n' }],
    [['systemd-analyze', 'cat-config', 'systemd/journald.conf'], { stdout: '# /etc/systemd/journald.conf\n[Journal]\n' }],
    [(argv) => argv[0] === 'dpkg-query' && ['fail2ban', 'python3-systemd', 'auditd', 'unattended-upgrades'].includes(argv.at(-1)!), { exitCode: 1, stderr: 'dpkg-query: no packages found matching\n' }],
    [['uname', '-r'], { stdout: '6.14.8-2-pve\n' }],
    [['apt-config', 'dump', 'Unattended-Upgrade', 'APT::Periodic'], { stdout: '' }],
    [['proxmox-boot-tool', 'kernel', 'list'], { stdout: 'Manually selected kernels:\nNone.\n\nAutomatically selected kernels:\n6.14.8-2-pve\n' }],
    [(argv) => argv[0] === 'systemctl' && (argv[1] === 'is-enabled' || argv[1] === 'is-active') && /^apt-daily/.test(argv.at(-1)!), { exitCode: 1, stdout: 'disabled\n' }],
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
  assert.deepEqual(order.slice(order.indexOf('API tokens') + 1, order.indexOf('Recovery procedures')), ['Named admin account', 'SSH keys', 'Break-glass account', 'SSH policy', 'Firewall', 'fail2ban', 'Two-factor login', 'Package repositories', 'Upgrades and reboots', 'Unattended security updates', 'Kernel and network settings', 'Audit log', 'The declared access model', 'Service accounts and API tokens', 'Config backup and restore']);

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

// --- the access part: groups, pools and roles, privileges per path, findings, tokens (access-audit.ts) ---

const DAY = 86_400;
/** The seed-004 web team with a monitoring account, on the audit's clock; the token values are in token.cfg only. */
const WEB_TEAM = `user:root@pam:1:0:::root@example.com:::
user:alice@pam:1:0:::alice@example.com:Alice Admin::
user:betty@pve:1:0:Betty:::external web pages::
user:jim@pve:1:0:Jim:::internal web pages::
user:nancy@pve:1:0:Nancy:::web team manager::
user:eve@pve:0:0:Eve:::left the company::
user:svc-mon@pve:1:0::::monitoring::
token:svc-mon@pve!soon:${NOW + 10 * DAY}:1:rotates next:
token:svc-mon@pve!later:${NOW + 40 * DAY}:1:grafana:
token:svc-mon@pve!forever:0:1::
token:svc-mon@pve!old:${NOW - 2 * DAY}:1:replaced:

group:ops:eve@pve::
group:webdevs:betty@pve,jim@pve:web programmers:
group:webmgr:nancy@pve::

pool:ExtWebSer:external web servers:100,101:local-lvm:
pool:IntWebSer:internal web servers:200::

role:WebAppManager:Pool.Audit,VM.Audit,VM.PowerMgmt:
role:WebDev:Pool.Audit,VM.Audit,VM.Console:

acl:1:/:alice@pam:Administrator:
acl:1:/:@ops:Administrator:
acl:1:/:svc-mon@pve,svc-mon@pve!soon,svc-mon@pve!later:PVEAuditor:
acl:1:/pool/ExtWebSer:betty@pve:WebDev:
acl:1:/pool/IntWebSer:jim@pve:WebDev:
acl:1:/pool/ExtWebSer:@webmgr:WebAppManager:
acl:1:/pool/IntWebSer:@webmgr:WebAppManager:
`;
const TOKEN_SECRET = '6f1c0c5e-8d3b-4b8e-9b1a-0d2f0e4c3a21';

/** MemoryFiles that remember every path read. */
class ReadLog extends MemoryFiles {
  readonly reads: string[] = [];
  override async read(path: string) {
    this.reads.push(path);
    return super.read(path);
  }
}

const accessRecords: Record<string, StepRecord> = {
  'admin-account': { status: 'verified', answers: { name: 'alice', role: 'Administrator', email: '', comment: '' }, updatedAt: '2026-11-22T10:00:00.000Z', bootId: 'b', applied: [], history: [] },
};

async function webTeamDoc(userCfg = WEB_TEAM, now = NOW, records = accessRecords) {
  const files = new ReadLog({
    '/etc/passwd': 'root:x:0:0:root:/root:/bin/bash\n',
    '/etc/group': 'root:x:0:\n',
    '/etc/shadow': 'root:*:19000:0:99999:7:::\n',
    '/etc/pve/user.cfg': userCfg,
    '/etc/pve/priv/token.cfg': `svc-mon@pve!soon ${TOKEN_SECRET}\n`,
  });
  const policy = await collectPolicyFacts({ exec: scriptedExec(), files, node: testNode }, [], records, '/var/lib/pve-baseline/journal.json', { now });
  return { policy, files, doc: renderAccessPolicy(policy, META) };
}

/** The lines of a section, from its heading to the next heading of the same or a higher level. */
function sectionOf(doc: string, heading: string): string[] {
  const lines = doc.split('\n');
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, heading);
  const level = heading.indexOf(' ');
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && l.indexOf(' ') <= level);
  return lines.slice(start + 1, end < 0 ? undefined : end).filter((l) => l !== '');
}

test('API tokens: owner, privilege separation, expiry date, days left and comment, then a line per token finding; never a secret', async () => {
  const { doc, files } = await webTeamDoc();
  assert.deepEqual(sectionOf(doc, '## API tokens'), [
    '| Token | Owner | Privilege separation | Expires | Days left | Comment |',
    '| --- | --- | --- | --- | --- | --- |',
    '| svc-mon@pve!forever | svc-mon@pve | yes | never | - | - |',
    '| svc-mon@pve!later | svc-mon@pve | yes | 2027-01-01 | 40 | grafana |',
    '| svc-mon@pve!old | svc-mon@pve | yes | 2026-11-20 | -2 (expired) | replaced |',
    '| svc-mon@pve!soon | svc-mon@pve | yes | 2026-12-02 | 10 | rotates next |',
    '- `svc-mon@pve!old` expired on 2026-11-20: Proxmox refuses it; remove it, or make a new one if it is still needed',
    '- `svc-mon@pve!soon` expires on 2026-12-02, in 10 days: regenerate or replace it before then, or what uses it stops working',
    '- `svc-mon@pve!forever` never expires: a leaked secret works until someone removes the token; give it an expiry (pveum user token modify svc-mon@pve forever --expire EPOCH)',
    'A token\'s secret is shown once, when it is made, and is kept only in `/etc/pve/priv/token.cfg`.',
  ]);
  assert.ok(!doc.includes(TOKEN_SECRET), 'no token value');
  assert.ok(files.reads.includes('/etc/pve/user.cfg') && !files.reads.some((p) => p.includes('/priv/')), `user.cfg read, priv/ never: ${files.reads.join(', ')}`);

  // A disabled owner: Proxmox refuses the token whatever its own expiry, and the table says so.
  const { doc: disabled } = await webTeamDoc(WEB_TEAM.replace('user:svc-mon@pve:1:0:', 'user:svc-mon@pve:0:0:'));
  assert.match(disabled, /\| svc-mon@pve!later \| svc-mon@pve \(user 'svc-mon@pve' is disabled: Proxmox refuses its tokens\) \| yes \| 2027-01-01 \| 40 \| grafana \|/);
});

test('groups with members and roles, pools with VMs and storage, custom roles with privileges (built-in roles by name)', async () => {
  const { doc } = await webTeamDoc();
  assert.deepEqual(sectionOf(doc, '### Groups'), [
    '| Group | Members | Roles | Comment |',
    '| --- | --- | --- | --- |',
    '| ops | eve@pve | Administrator on / | - |',
    '| webdevs | betty@pve, jim@pve | none | web programmers |',
    '| webmgr | nancy@pve | WebAppManager on /pool/ExtWebSer; WebAppManager on /pool/IntWebSer | - |',
  ]);
  assert.deepEqual(sectionOf(doc, '### Pools'), [
    '| Pool | VMs | Storage | Comment |',
    '| --- | --- | --- | --- |',
    '| ExtWebSer | 100, 101 | local-lvm | external web servers |',
    '| IntWebSer | 200 | none | internal web servers |',
  ]);
  assert.deepEqual(sectionOf(doc, '### Roles'), [
    '| Role | Privileges | Granted on |',
    '| --- | --- | --- |',
    '| WebAppManager | Pool.Audit, VM.Audit, VM.PowerMgmt | /pool/ExtWebSer, /pool/IntWebSer |',
    '| WebDev | Pool.Audit, VM.Audit, VM.Console | /pool/ExtWebSer, /pool/IntWebSer |',
    'Built-in roles in use (their privileges are Proxmox VE\'s own): Administrator (on /); PVEAuditor (on /).',
  ]);
});

test('privileges per user and path: every line equals the evaluator\'s answer, and no path where someone has a privilege is missing', async () => {
  const { doc } = await webTeamDoc();
  const cfg = parseUserCfg(WEB_TEAM, { major: 9 }).cfg;
  const items = sectionOf(doc, '### Privileges per user and path').filter((l) => l.startsWith('- '));
  const listed = new Map<string, string[]>();
  for (const item of items) {
    const m = /^- `([^`]+)` on `([^`]+)`: (.+)$/.exec(item);
    assert.ok(m, item);
    listed.set(`${m[1]} ${m[2]}`, m[3]!.split(', '));
  }
  // The seed-004 questions: what Betty, Jim and Nancy may do on the VMs of the two pools.
  assert.deepEqual(listed.get('betty@pve /vms/100'), ['Pool.Audit', 'VM.Audit', 'VM.Console']);
  assert.equal(listed.get('betty@pve /vms/200'), undefined);
  assert.equal(listed.get('jim@pve /vms/101'), undefined);
  assert.deepEqual(listed.get('jim@pve /vms/200'), ['Pool.Audit', 'VM.Audit', 'VM.Console']);
  assert.deepEqual(listed.get('nancy@pve /vms/200'), ['Pool.Audit', 'VM.Audit', 'VM.PowerMgmt']);
  assert.deepEqual(listed.get('nancy@pve /storage/local-lvm'), ['Pool.Audit', 'VM.Audit', 'VM.PowerMgmt']);
  assert.deepEqual(listed.get('svc-mon@pve!soon /nodes'), ['Datastore.Audit', 'Mapping.Audit', 'Pool.Audit', 'SDN.Audit', 'Sys.Audit', 'VM.Audit', 'VM.GuestAgent.Audit']);
  assert.equal([...listed.keys()].some((k) => k.startsWith('svc-mon@pve!forever ')), false, 'a separated token without an ACL entry has nothing');

  // Cell for cell against permissions.ts, over the matrix's paths and every pool member.
  const paths = [...new Set([...accessMatrix(cfg).paths, '/vms/100', '/vms/101', '/vms/200', '/storage/local-lvm'])];
  const ids = accessMatrix(cfg).rows.map((r) => r.id);
  let withPrivileges = 0;
  for (const id of ids) {
    for (const path of paths) {
      const expected = [...privilegeMap(cfg, id, path).keys()].sort();
      assert.deepEqual(listed.get(`${id} ${path}`) ?? [], expected, `${id} on ${path}`);
      if (expected.length) withPrivileges += 1;
    }
  }
  assert.ok(withPrivileges > 40, `a real cross-check (${withPrivileges} cells with privileges)`);
  for (const [key, privs] of listed) {
    const [id, path] = key.split(' ') as [string, string];
    assert.deepEqual(privs, [...privilegeMap(cfg, id, path).keys()].sort(), key);
  }
});

test('findings: the declared admins come from the journal (admin-account, break-glass, the access model\'s hook)', async () => {
  const { doc, policy } = await webTeamDoc();
  assert.deepEqual(policy.access?.declaredAdmins, ['alice@pam']);
  const findings = sectionOf(doc, '## Findings');
  assert.match(findings[0]!, /Administrator held by anyone but the declared admins \(`root@pam`, `alice@pam`\)/);
  assert.deepEqual(findings.slice(1), [
    '- `svc-mon@pve!old` expired on 2026-11-20: Proxmox refuses it; remove it, or make a new one if it is still needed',
    '- `eve@pve` holds Administrator on `/` and everything below it, through group `ops`, but is not a declared admin',
    '- `eve@pve` is disabled, but keeps Administrator on `/` and everything below it (through group `ops`): re-enabling it restores that silently',
    '- `svc-mon@pve!soon` expires on 2026-12-02, in 10 days: regenerate or replace it before then, or what uses it stops working',
    '- `svc-mon@pve!forever` never expires: a leaked secret works until someone removes the token; give it an expiry (pveum user token modify svc-mon@pve forever --expire EPOCH)',
  ]);
  // Without the admin-account answer, alice is not declared.
  const { policy: bare } = await webTeamDoc(WEB_TEAM, NOW, {});
  assert.deepEqual(bare.access?.findings.filter((f) => f.kind === 'unexpected-administrator').map((f) => f.subject), ['alice@pam', 'eve@pve']);

  const record = (answers: StepRecord['answers']): StepRecord => ({ status: 'verified', answers, updatedAt: '2026-11-22T10:00:00.000Z', bootId: 'b', applied: [], history: [] });
  assert.deepEqual(declaredAdminsFrom({ 'admin-account': record({ name: 'alice' }), 'access-model': record({ access: { admins: ['bob@pve', 'alice@pam'] } }) }), ['alice@pam', 'bob@pve']);
  assert.deepEqual(declaredAdminsFrom({ 'access-model': record({ template: 'auditor' }) }), [], 'a template declares no admins');
  assert.deepEqual(declaredAdminsFrom({}), []);
  assert.deepEqual(breakGlassFrom({ 'break-glass': record({ wanted: true, name: 'breakglass' }) }), ['breakglass@pam']);
  assert.deepEqual(breakGlassFrom({ 'break-glass': record({ wanted: false, name: 'breakglass' }) }), []);
  // The caller may name them instead.
  const files = new MemoryFiles({ '/etc/passwd': '', '/etc/group': '', '/etc/shadow': '', '/etc/pve/user.cfg': WEB_TEAM });
  const told = await collectPolicyFacts({ exec: scriptedExec(), files, node: testNode }, [], accessRecords, 'j', { now: NOW, declaredAdmins: ['alice@pam', 'eve@pve'] });
  assert.deepEqual(told.access?.findings.filter((f) => f.kind === 'unexpected-administrator'), []);
});

test('the access part passes markdownlint, and a day later the same node gives the same document apart from the day counts', async () => {
  const { doc } = await webTeamDoc();
  assert.deepEqual((await lint({ strings: { doc }, config: LINT_CONFIG })).doc, []);
  const { doc: tomorrow } = await webTeamDoc(WEB_TEAM, NOW + DAY);
  assert.notEqual(doc, tomorrow, 'the day counts moved');
  assert.match(tomorrow, /\| svc-mon@pve!soon \| svc-mon@pve \| yes \| 2026-12-02 \| 9 \| rotates next \|/);
  assert.equal(comparableDocument(doc), comparableDocument(tomorrow));
  // Eleven days on, the token monitoring uses crosses into "expiring": that is a change.
  const { doc: later } = await webTeamDoc(WEB_TEAM, NOW + 11 * DAY);
  assert.notEqual(comparableDocument(doc), comparableDocument(later));
  assert.match(later, /- `svc-mon@pve!later` expires on 2027-01-01, in 29 days/);
  // Only the tokens' day counts are left out: any other change still shows.
  assert.notEqual(comparableDocument(doc), comparableDocument(doc.replace('| 40 | grafana |', '| 40 | grafana2 |')));
});

test('a new weekly backup does not make the document stale: its last-archive rows are left out of the comparison; another destination is a change', async () => {
  const { policy } = await webTeamDoc();
  const settings = { version: 1 as const, recipients: [], identityFile: '/var/lib/pve-baseline/config-backup/identity.txt', keep: 7, destination: { kind: 'path' as const, dir: '/mnt/backup' }, schedule: 'weekly' as const };
  const run = (at: string, name: string, sha256: string) => ({ at, ok: true, archive: { name, path: `/var/lib/pve-baseline/config-backup/archives/${name}`, sha256, bytes: 1, files: 1 }, ms: {} });
  const weekOne = run('2026-12-01T03:00:00.000Z', 'pve1-config-20261201T030000Z.tar.gz.age', 'ab'.repeat(32));
  const weekTwo = run('2026-12-08T03:00:00.000Z', 'pve1-config-20261208T030000Z.tar.gz.age', 'cd'.repeat(32));
  const render = (status: Parameters<typeof backupSection>[1], dir = '/mnt/backup') =>
    renderAccessPolicy({ ...policy, sections: [...policy.sections, { stepId: 'config-backup', section: backupSection({ ...settings, destination: { kind: 'path', dir } }, status, 'pve1') }] }, META);
  const first = render({ last: weekOne, lastGood: weekOne });
  const second = render({ last: weekTwo, lastGood: weekTwo });
  assert.notEqual(first, second);
  assert.match(first, /^\| last good archive \| `pve1-config-20261201T030000Z\.tar\.gz\.age` \|$/m, 'the row as the comparison knows it');
  assert.equal(comparableDocument(first), comparableDocument(second));
  assert.notEqual(comparableDocument(first), comparableDocument(render({ last: weekOne, lastGood: weekOne }, '/mnt/other')));
});
