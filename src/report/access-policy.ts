/**
 * The access-policy document (seed 000, "Documentation as a security
 * control"; seed 002, "Access Control Matrix"): markdown an auditor reads,
 * rendered from PolicyFacts only. Pure and deterministic: the same state
 * gives the same document apart from its date.
 *
 * The report writes the node, its accounts, the access matrix, the tokens,
 * the recovery procedures and the change log; between them come the steps'
 * own sections (src/report/section.ts), in catalogue order.
 */
import type { PolicyFacts, StepSection } from './facts.ts';
import type { AccessProofRecord } from '../engine/journal.ts';
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
const REPORT_HEADINGS = ['The node', 'Administrative accounts', 'Access-control matrix', 'API tokens', 'Recovery procedures', 'Change log', 'Evidence'];

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
    'Numbers in brackets are the count of effective privileges. Privileges on `/`:',
    '',
  ];
  for (const r of m.rows) {
    const privs = r.cells['/']?.privileges ?? [];
    out.push(`- ${r.id}: ${privs.length ? privs.join(', ') : 'none'}`);
  }
  return out;
}

export function renderAccessPolicy(facts: PolicyFacts, meta: { date: string; version: string }): string {
  const n = facts.node;
  const lines: string[] = [
    `# Access policy: ${n.hostname}`,
    '',
    `Written by pve-baseline ${meta.version} on ${meta.date} from the node's own state. Regenerate it at any time with \`pve-baseline docs\`; it never contains passwords, TOTP secrets, token values or private keys.`,
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
    '## Access-control matrix',
    '',
    ...matrixSection(facts),
    '',
    '## API tokens',
    '',
    ...(facts.tokens.length
      ? table(['Token', 'Privilege separation', 'Expires', 'Comment'], facts.tokens.map((t) => [t.id, t.privsep ? 'yes' : 'no: full user rights', expiry(t.expire), t.comment]))
      : ['No API tokens.']),
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
      ? table(
          ['When (UTC)', 'Step', 'Status', 'Files changed (backup)', 'Access proved'],
          facts.changes.map((c) => [utc(c.updatedAt), c.step, c.status, c.files.map((f) => `${f.path} (${f.backup})`).join('; ') || '-', c.proof ? describeProof(c.proof) : '-']),
        )
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
