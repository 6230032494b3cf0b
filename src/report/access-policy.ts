/**
 * The access-policy document (seed 000, "Documentation as a security
 * control"; seed 002, "Access Control Matrix"): markdown an auditor reads,
 * rendered from PolicyFacts only. Pure and deterministic: the same state
 * gives the same document apart from its date.
 */
import type { PolicyFacts } from './facts.ts';
import { BREAK_GLASS_PURPOSE, breakGlassProcedure } from '../../steps/break-glass.ts';

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

/** The sshd settings the policy is about, in reading order, with what each means. */
const SSH_KEYWORDS: [keyword: string, meaning: string][] = [
  ['permitrootlogin', 'root logins'],
  ['passwordauthentication', 'passwords accepted'],
  ['kbdinteractiveauthentication', 'keyboard-interactive (PAM prompts)'],
  ['pubkeyauthentication', 'public keys accepted'],
  ['authenticationmethods', 'methods required'],
  ['allowusers', 'only these users'],
  ['allowgroups', 'only these groups'],
  ['maxauthtries', 'attempts per connection'],
  ['logingracetime', 'seconds to log in'],
  ['clientaliveinterval', 'idle check every (s)'],
  ['clientalivecountmax', 'unanswered checks before a drop'],
  ['loglevel', 'log detail (VERBOSE records key fingerprints)'],
  ['x11forwarding', 'X11 forwarding'],
  ['allowagentforwarding', 'agent forwarding'],
  ['permituserenvironment', 'user environment files'],
  ['kexalgorithms', 'key exchange'],
  ['ciphers', 'ciphers'],
  ['macs', 'MACs'],
  ['hostkeyalgorithms', 'host key algorithms'],
  ['pubkeyacceptedalgorithms', 'accepted user key algorithms'],
];

function rootPolicy(facts: PolicyFacts): string[] {
  const values = 'values' in facts.ssh ? facts.ssh.values : {};
  const root = values.permitrootlogin?.join(' ') ?? 'unknown';
  const meaning: Record<string, string> = {
    yes: 'root may log in over SSH with a password or a key. This is the fresh-install setting; the sshd step restricts it.',
    'prohibit-password': 'root may log in over SSH with a key only, never with a password.',
    'without-password': 'root may log in over SSH with a key only, never with a password.',
    no: 'root may not log in over SSH (a Match block may still allow keys from the cluster and management networks).',
    'forced-commands-only': 'root may log in with a key only to run its forced command.',
  };
  return [
    `- SSH: \`PermitRootLogin ${root}\`: ${meaning[root] ?? 'see the SSH policy below.'}`,
    '- root@pam stays enabled in Proxmox VE: some operations (updates from the web UI, cluster joins) need it. It is for provisioning and emergencies, not daily work.',
    '- Proxmox clusters use root SSH between nodes (migration, `pvecm`): root keeps key-only access from the cluster and management networks.',
    '- Root\'s authorized keys are `/etc/pve/priv/authorized_keys`, shared by every node of a cluster.',
  ];
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
    '## Root',
    '',
    ...rootPolicy(facts),
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
    '## SSH policy',
    '',
    ...('values' in facts.ssh
      ? table(
          ['Setting', 'Meaning', 'In force (`sshd -T`)'],
          SSH_KEYWORDS.map(([k, meaning]) => [`\`${k}\``, meaning, (facts.ssh as { values: Record<string, string[]> }).values[k]?.join(' ') ?? '(not set)']),
        )
      : [`\`sshd -T\` could not be read: ${facts.ssh.error}`]),
    '',
    '## Firewall',
    '',
    'Not configured yet by pve-baseline.',
    '',
    '## Updates',
    '',
    'Not configured yet by pve-baseline.',
    '',
    '## Backups',
    '',
    'Not configured yet by pve-baseline.',
    '',
    '## Recovery procedures',
    '',
    '- Console: log in as root on the local console, or over IPMI, iDRAC or iLO; SSH settings and the firewall do not apply there.',
    '- Single-user mode: at the boot menu, edit the entry and add `systemd.unit=rescue.target` to the kernel line; the root password is asked.',
    '- Rescue media: boot the Proxmox VE installer ISO in rescue mode, or a Debian live image, mount the root file system and repair it.',
    '- pve-baseline: every file it changed has a backup (see the change log); `pve-baseline revert STEP` puts a step back.',
    '',
    '### Break-glass account',
    '',
    ...(facts.breakGlass
      ? [BREAK_GLASS_PURPOSE, '', `Account: \`${facts.breakGlass}\` (Linux) and \`${facts.breakGlass}@pam\` (Proxmox VE). To use it:`, '', ...breakGlassProcedure(facts.breakGlass).map((s, i) => `${i + 1}. ${s}`)]
      : ['No break-glass account was created.']),
    '',
    '## Audit notes',
    '',
    '- Daily work uses named accounts, so logs say who did what; root is for provisioning and emergencies.',
    '- SSH logins are in the journal (`journalctl -u ssh`); with `LogLevel VERBOSE` each records the key fingerprint used.',
    '- Web UI and API logins are in `/var/log/pveproxy/access.log` and the task log; `/etc/pve` is a view of the cluster database (`/var/lib/pve-cluster/config.db`), so file watches see only local writes.',
    '',
    '## Change log',
    '',
    ...(facts.changes.length
      ? table(
          ['When (UTC)', 'Step', 'Status', 'Files changed (backup)'],
          facts.changes.map((c) => [c.updatedAt.replace('T', ' ').replace(/\.\d+Z$/, ''), c.step, c.status, c.files.map((f) => `${f.path} (${f.backup})`).join('; ') || '-']),
        )
      : ['pve-baseline has not changed anything on this node yet.']),
    '',
    '## Evidence',
    '',
    'The facts above come from:',
    '',
    ...facts.evidence.map((e) => `- \`${e}\``),
    '',
  ];
  return lines.join('\n');
}
