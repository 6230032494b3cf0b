/**
 * The access-policy document (seed 000, "Documentation as a security
 * control"; seed 002, "Access Control Matrix"): markdown an auditor reads,
 * rendered from PolicyFacts only. Pure and deterministic: the same state
 * gives the same document apart from its date.
 *
 * The report writes the node, its accounts, groups, pools and roles, the
 * access matrix with each user's and token's privileges per path, the
 * access findings, the tokens, the recovery procedures and the change log;
 * between them come the steps' own sections (src/report/section.ts), in
 * catalogue order. The tokens' day counts change daily: `comparableDocument`
 * leaves them out when two documents are compared.
 */
import type { PolicyFacts, StepSection } from './facts.ts';
import type { AccessProofRecord } from '../engine/journal.ts';
import type { Finding, FindingKind } from '../pve/access-audit.ts';
import { code, type DocumentBlock } from './section.ts';

/**
 * One table cell. Text that a renderer would turn into a link (an address
 * like alice@example.com, an algorithm like x@openssh.com, a URL) goes into a
 * code span, so it reads literally.
 */
function cell(text: string): string {
  const flat = text.replace(/\n/g, ' ');
  if (!flat) return '-';
  if (/[^\s@`]+@[^\s@`]+\.[a-z]{2,}|[a-z]+:\/\//i.test(flat) && !flat.includes('`')) return `\`${flat.replace(/\|/g, '\\|')}\``;
  return flat.replace(/\|/g, '\\|');
}

function table(head: string[], rows: string[][]): string[] {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)];
}

const expiry = (epoch: number) => (epoch ? new Date(epoch * 1000).toISOString().slice(0, 10) : 'never');

/** One block of a step's section, as markdown lines. */
function blockLines(block: DocumentBlock): string[] {
  const flat = (text: string) => text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  switch (block.kind) {
    case 'paragraph':
      return [flat(block.text)];
    case 'list':
      return block.items.map((item, i) => `${block.numbered ? `${i + 1}.` : '-'} ${flat(item)}`);
    case 'table':
      return table(block.head, block.rows);
  }
}

/** Blocks separated by blank lines, as markdownlint wants around lists and tables. */
const blocksLines = (blocks: readonly DocumentBlock[]) => blocks.flatMap((b, i) => [...(i ? [''] : []), ...blockLines(b)]);

/** The report's own level-2 headings: a step's section may not take one of them. */
const REPORT_HEADINGS = [
  'The node',
  'Administrative accounts',
  'Groups, pools and roles',
  'Groups',
  'Pools',
  'Roles',
  'Access-control matrix',
  'Privileges per user and path',
  'Findings',
  'API tokens',
  'Recovery procedures',
  'Change log',
  'Evidence',
];

/** The steps' sections; a heading already used gets its step id, so every heading stays unique (markdownlint MD024). */
function stepSections(sections: readonly StepSection[]): string[] {
  const used = new Set(REPORT_HEADINGS.map((h) => h.toLowerCase()));
  const out: string[] = [];
  for (const { stepId, section } of sections) {
    let heading = section.heading.replace(/\s+/g, ' ').trim() || stepId;
    if (used.has(heading.toLowerCase())) heading = `${heading} (${stepId})`;
    used.add(heading.toLowerCase());
    out.push(`## ${heading}`, '');
    if (section.blocks.length) out.push(...blocksLines(section.blocks), '');
    for (const sub of section.subsections ?? []) {
      let subHeading = sub.heading.replace(/\s+/g, ' ').trim() || stepId;
      if (used.has(subHeading.toLowerCase())) subHeading = `${subHeading} (${heading})`;
      used.add(subHeading.toLowerCase());
      out.push(`### ${subHeading}`, '');
      if (sub.blocks.length) out.push(...blocksLines(sub.blocks), '');
    }
  }
  return out;
}

const utc = (iso: string) => iso.replace('T', ' ').replace(/(\.\d+)?Z$/, '');

/** Who proved access to a guarded change: "proved by alice from 10.0.0.5 with SHA256:... at 2026-11-22 10:00:00". */
export function describeProof(proof: AccessProofRecord): string {
  const who = `${proof.user ?? 'a new login'}${proof.from ? ` from ${proof.from}` : ''}${proof.fingerprint ? ` with ${proof.fingerprint}` : ''}`;
  switch (proof.by) {
    case 'login':
      return `proved by ${who} at ${utc(proof.at)}`;
    case 'confirm':
      return `proved by ${who} running pve-baseline confirm at ${utc(proof.at)}`;
    case 'console':
      return `kept on the console${proof.user ? ` by ${proof.user}` : ''} without a second login at ${utc(proof.at)}`;
  }
}

function matrixSection(facts: PolicyFacts): string[] {
  const m = facts.matrix;
  if (!m) return ['This node is not a Proxmox VE node: there is no access-control list to show.'];
  const out = [
    `Effective roles per user and API token on each path (Proxmox VE ${m.major} rules: propagation, user over group, deeper over shallower, NoAccess, pools, privilege-separated tokens).`,
    '',
    ...table(
      ['User or token', 'Enabled', ...m.paths.map((p) => `\`${p}\``)],
      m.rows.map((r) => [
        r.kind === 'token' ? `${r.id} (token${r.privsep ? ', separated' : ', full user rights'})` : r.id,
        r.enabled ? 'yes' : 'no',
        ...m.paths.map((p) => {
          const c = r.cells[p]!;
          return c.roles.length ? `${c.roles.join(', ')} (${c.privileges.length})` : c.privileges.length ? `(${c.privileges.length})` : '-';
        }),
      ]),
    ),
    '',
    'Numbers in brackets are the count of effective privileges.',
  ];
  const privileges = facts.access?.privileges;
  if (privileges) {
    out.push(
      '',
      '### Privileges per user and path',
      '',
      'What each user and token may do, path by path: the matrix\'s paths, every path with an ACL entry and every VM and storage of a pool. Each line is what `GET /access/permissions` answers for that user or token and path; a path where it has no privilege is left out.',
      '',
    );
    if (privileges.length) for (const p of privileges) out.push(`- ${code(p.id)} on ${code(p.path)}: ${p.privileges.join(', ')}`);
    else out.push('No user or token has any privilege.');
  } else {
    // Facts without the per-path list (not collected by collectPolicyFacts): the privileges on / only.
    out.push('', 'Privileges on `/`:', '');
    for (const r of m.rows) {
      const privs = r.cells['/']?.privileges ?? [];
      out.push(`- ${r.id}: ${privs.length ? privs.join(', ') : 'none'}`);
    }
  }
  return out;
}


/** Groups with their members and roles, pools with their VMs and storage, the roles in use. */
function groupsPoolsRolesSection(facts: PolicyFacts): string[] {
  const s = facts.access?.summary;
  if (!s) return ['This node is not a Proxmox VE node: there are no groups, pools or roles to show.'];
  const grant = (g: { path: string; role: string; propagate: 0 | 1 }) => `${g.role} on ${g.path}${g.propagate ? '' : ' (this path only)'}`;
  const custom = s.roles.filter((r) => !r.builtin);
  const builtin = s.roles.filter((r) => r.builtin);
  return [
    'Grant roles to groups rather than to single users, and scope a team to its VMs and storage with a pool: an ACL entry on `/pool/NAME` reaches every member of the pool.',
    '',
    '### Groups',
    '',
    ...(s.groups.length
      ? table(['Group', 'Members', 'Roles', 'Comment'], s.groups.map((g) => [g.id, g.members.join(', ') || 'none', g.grants.map(grant).join('; ') || 'none', g.comment]))
      : ['No groups.']),
    '',
    '### Pools',
    '',
    ...(s.pools.length ? table(['Pool', 'VMs', 'Storage', 'Comment'], s.pools.map((p) => [p.id, p.vms.join(', ') || 'none', p.storage.join(', ') || 'none', p.comment])) : ['No pools.']),
    '',
    '### Roles',
    '',
    ...(custom.length
      ? table(['Role', 'Privileges', 'Granted on'], custom.map((r) => [r.id, r.privileges.join(', ') || 'none', r.usedOn.join(', ') || 'not granted']))
      : ['No custom roles.']),
    '',
    builtin.length
      ? `Built-in roles in use (their privileges are Proxmox VE's own): ${builtin.map((r) => `${r.id} (on ${r.usedOn.join(', ')})`).join('; ')}.`
      : 'No built-in role is granted to anyone (root@pam has every privilege without one).',
  ];
}

const TOKEN_FINDINGS: ReadonlySet<FindingKind> = new Set(['token-expired', 'token-expiring', 'token-no-expiry', 'root-token', 'token-not-separated']);

const findingLine = (f: Finding) => `- ${f.message.replace(/\s*[\r\n]+\s*/g, ' ')}`;

function tokensSection(facts: PolicyFacts): string[] {
  if (!facts.tokens.length) return ['No API tokens.'];
  const owner = (t: PolicyFacts['tokens'][number]) => {
    const id = t.owner ?? t.id.slice(0, t.id.lastIndexOf('!'));
    return t.ownerUsable === false ? `${id} (${t.ownerRefusal ?? 'refused'}: Proxmox refuses its tokens)` : id;
  };
  const daysLeft = (t: PolicyFacts['tokens'][number]) => (t.daysLeft === undefined || t.daysLeft === null ? '-' : t.state === 'expired' ? `${t.daysLeft} (expired)` : String(t.daysLeft));
  const out = table(
    ['Token', 'Owner', 'Privilege separation', 'Expires', 'Days left', 'Comment'],
    facts.tokens.map((t) => [t.id, owner(t), t.privsep ? 'yes' : 'no: full user rights', expiry(t.expire), daysLeft(t), t.comment]),
  );
  const findings = (facts.access?.findings ?? []).filter((f) => TOKEN_FINDINGS.has(f.kind));
  if (findings.length) out.push('', ...findings.map(findingLine));
  return out;
}

function findingsSection(facts: PolicyFacts): string[] {
  const a = facts.access;
  if (!a) return ['This node is not a Proxmox VE node: there is no access control to check.'];
  const admins = ['root@pam', ...a.declaredAdmins.filter((id) => id !== 'root@pam')].map(code).join(', ');
  const out = [
    `What the access control holds that the baseline flags: tokens that expire within 30 days, have expired, never expire, belong to root@pam or are not privilege-separated; Administrator held by anyone but the declared admins (${admins}${a.breakGlass.length ? `; break-glass: ${a.breakGlass.map(code).join(', ')}` : ''}); disabled or expired accounts that keep roles or tokens.`,
    '',
  ];
  if (a.findings.length) out.push(...a.findings.map(findingLine));
  else out.push('Nothing to flag.');
  return out;
}

/**
 * The document without what changes while the node does not: the API
 * tokens' day counts (the table's "Days left", "in N days" in the findings),
 * and the config backup's last archive (its name, time and checksum change
 * with every weekly run). A token crossing into "expiring" or "expired", or a
 * backup set up anew, still changes the text. For comparing two documents,
 * with the date line left out too.
 */
export function comparableDocument(text: string): string {
  let section = '';
  return text
    .split('\n')
    .map((line) => {
      if (line.startsWith('## ')) section = line.slice(3);
      if (section === 'API tokens' && /^\| /.test(line) && !/^\| (Token|---) \|/.test(line)) {
        const cells = line.split(/(?<!\\)\|/);
        if (cells.length === 8) cells[5] = ' N ';
        return cells.join('|');
      }
      if (section === 'API tokens' || section === 'Findings') return line.replace(/\bin \d+ days?\b/g, 'in N days');
      if (section === BACKUP_HEADING && BACKUP_RUN_ROW.test(line)) return line.replace(BACKUP_RUN_ROW, '$1 (the last run) |');
      return line;
    })
    .join('\n');
}

/** The config backup's section and its rows that name the last archive (steps/config-backup.ts backupSection). */
const BACKUP_HEADING = 'Config backup and restore';
const BACKUP_RUN_ROW = /^(\| (?:last good archive|taken|SHA-256 \(encrypted file\)|kept at) \|).*$/;

/** Who applied a step: "per node: pve2", or for a datacenter step the node the shared record names. */
function appliedBy(change: PolicyFacts['changes'][number], here: string): string {
  if (change.scope === 'node') return `per node: ${here}`;
  if (change.scope !== 'datacenter') return '-';
  // Compliant without an apply of pve-baseline's (made by hand or in the web UI), or applied before nodes were recorded.
  if (!change.appliedFrom) return 'datacenter-wide: no apply recorded';
  return `datacenter-wide: ${change.appliedFrom.node} on ${utc(change.appliedFrom.at).slice(0, 16)} UTC`;
}

export function renderAccessPolicy(facts: PolicyFacts, meta: { date: string; version: string }): string {
  const n = facts.node;
  const lines: string[] = [
    `# Access policy: ${n.hostname}`,
    '',
    `Written by pve-baseline ${meta.version} on ${meta.date} from the node's own state (node ${facts.writtenOn ?? n.hostname}). Regenerate it at any time with \`pve-baseline docs\`; it never contains passwords, TOTP secrets, token values or private keys.`,
    '',
    '## The node',
    '',
    ...table(
      ['Fact', 'Value'],
      [
        ['Hostname', n.hostname],
        ['Proxmox VE', n.proxmox ?? 'not a Proxmox VE node'],
        ['Debian', n.debian ?? 'unknown'],
        ['Addresses', n.addresses.join(', ')],
        ['Bridges', n.bridges.join(', ')],
        ['Storage', n.storage.map((s) => `${s.id} (${s.type}${s.content ? `: ${s.content}` : ''})`).join(', ')],
      ],
    ),
    '',
    'Web UI and API logins are in `/var/log/pveproxy/access.log` and the task log; `/etc/pve` is a view of the cluster database (`/var/lib/pve-cluster/config.db`), so file watches see only local writes.',
    '',
    '## Administrative accounts',
    '',
    '### Linux accounts that can log in or use sudo',
    '',
    ...table(
      ['Account', 'UID', 'Shell', 'sudo', 'Password'],
      facts.linuxAdmins.map((a) => [a.name, String(a.uid), a.shell, a.sudo ? 'yes' : 'no', { set: 'set', locked: 'locked', none: 'none (cannot log in with one)', empty: 'EMPTY: no password needed', unknown: 'unknown' }[a.password]]),
    ),
    '',
    '### Proxmox VE users',
    '',
    ...(facts.pveUsers.length
      ? table(
          ['User', 'Realm', 'Enabled', 'Expires', 'Groups', '2FA', 'Comment'],
          facts.pveUsers.map((u) => [u.userid, u.realm, u.enabled ? 'yes' : 'no', expiry(u.expire), u.groups.join(', '), u.tfa ? 'yes' : 'no', u.comment]),
        )
      : ['No Proxmox VE users (not a Proxmox VE node).']),
    '',
    '## Groups, pools and roles',
    '',
    ...groupsPoolsRolesSection(facts),
    '',
    '## Access-control matrix',
    '',
    ...matrixSection(facts),
    '',
    '## Findings',
    '',
    ...findingsSection(facts),
    '',
    '## API tokens',
    '',
    ...tokensSection(facts),
    '',
    'A token\'s secret is shown once, when it is made, and is kept only in `/etc/pve/priv/token.cfg`.',
    '',
    ...stepSections(facts.sections),
    '## Recovery procedures',
    '',
    '- Console: log in as root on the local console, or over IPMI, iDRAC or iLO; SSH settings and the firewall do not apply there.',
    '- Single-user mode: at the boot menu, edit the entry and add `systemd.unit=rescue.target` to the kernel line; the root password is asked.',
    '- Rescue media: boot the Proxmox VE installer ISO in rescue mode, or a Debian live image, mount the root file system and repair it.',
    '- pve-baseline: every file it changed has a backup (see the change log); `pve-baseline revert STEP` puts a step back.',
    '',
    '## Change log',
    '',
    ...(facts.changes.length
      ? [
          `What pve-baseline recorded on ${facts.writtenOn ?? n.hostname}. In a cluster, a datacenter step changes what every node shares (\`/etc/pve\`): the node that applied it is named; a node step is each node's own.`,
          '',
          ...table(
            ['When (UTC)', 'Step', 'Status', 'Files changed (backup)', 'Access proved', 'Applied by'],
            facts.changes.map((c) => [utc(c.updatedAt), c.step, c.status, c.files.map((f) => `${f.path} (${f.backup})`).join('; ') || '-', c.proof ? describeProof(c.proof) : '-', appliedBy(c, facts.writtenOn ?? n.hostname)]),
          ),
        ]
      : ['pve-baseline has not changed anything on this node yet.']),
    '',
    '## Evidence',
    '',
    'The facts above come from:',
    '',
    ...facts.evidence.map((e) => `- ${code(e)}`),
    '',
  ];
  return lines.join('\n');
}
