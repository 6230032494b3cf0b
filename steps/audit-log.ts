/**
 * The kernel audit system records who changed the files that decide who gets
 * in (accounts, sudo, sshd, PAM), how the node is reached (network, firewall
 * bans) and what it installs (APT sources), and hand edits of /etc/pve.
 *
 *   install   auditd from the node's repositories (it brings auditctl and augenrules)
 *   rules     /etc/audit/rules.d/90-pve-baseline.rules, one rule per line, each with a key
 *             (`ausearch -k KEY`) and its reason; checked line by line with auditctl -R's
 *             rules (src/audit/rules.ts) before it is shown
 *   load      `augenrules --load`, which compiles rules.d into audit.rules and loads it
 *   rotation  auditd.conf keeps a bounded set of logs: only max_log_file, num_logs and
 *             max_log_file_action are edited, in place, and only when they are not bounded
 *
 * Not applicable where the kernel audit system cannot be reached: in a
 * container (the kernel answers audit requests only from the initial PID and
 * user namespaces, so auditctl fails there), on a kernel without audit
 * support (no /proc/self/loginuid), or one booted with audit=0.
 */
import type { Change } from '../src/engine/change.ts';
import type { Check, Step, StepContext } from '../src/engine/step.ts';
import { bullets, code, paragraph, table, type DocumentSection } from '../src/report/section.ts';
import { auditRules, editAuditdConf, parseAuditctlList, parseAuditEnabled, readAuditdConf, ruleIdentity, validateAuditRules, type AuditRule } from '../src/audit/rules.ts';

export const AUDIT_RULES_FILE = '/etc/audit/rules.d/90-pve-baseline.rules';
export const AUDITD_CONF = '/etc/audit/auditd.conf';

interface RuleLine {
  rule: string;
  why: string;
}

/** The baseline's rules, in the file's order. `-p wa`: writes and attribute changes (owner, mode), not reads. */
export const RULES: { heading: string; lines: RuleLine[] }[] = [
  {
    heading: 'Accounts and groups: a new or changed account or password is how access is kept',
    lines: [
      { rule: '-w /etc/passwd -p wa -k identity', why: 'an account added, changed or removed' },
      { rule: '-w /etc/shadow -p wa -k identity', why: 'a password, a lock or an expiry changed' },
      { rule: '-w /etc/group -p wa -k identity', why: 'group membership changed (sudo is a group)' },
      { rule: '-w /etc/gshadow -p wa -k identity', why: 'group passwords or group administrators changed' },
    ],
  },
  {
    heading: 'Who may become root',
    lines: [
      { rule: '-w /etc/sudoers -p wa -k sudoers', why: 'sudo policy changed' },
      { rule: '-w /etc/sudoers.d -p wa -k sudoers', why: 'a sudo drop-in added, changed or removed' },
    ],
  },
  {
    heading: 'How SSH lets people in (the sshd hardening lives in sshd_config.d)',
    lines: [
      { rule: '-w /etc/ssh/sshd_config -p wa -k sshd-config', why: 'sshd settings changed' },
      { rule: '-w /etc/ssh/sshd_config.d -p wa -k sshd-config', why: 'an sshd drop-in added, changed or removed' },
    ],
  },
  { heading: 'PAM decides how every login is checked', lines: [{ rule: '-w /etc/pam.d -p wa -k pam', why: 'a PAM stack changed' }] },
  {
    heading:
      'Proxmox configuration edited by a person: auid!=unset keeps only processes of a login session (root over SSH has its login uid).\n' +
      "Proxmox's own daemons write /etc/pve all the time with no login uid, and API and web UI changes are in Proxmox's task log already.",
    lines: [{ rule: '-a always,exit -F dir=/etc/pve -F perm=wa -F auid!=unset -k pve-config', why: 'a file under /etc/pve written from a login session' }],
  },
  { heading: 'Network configuration', lines: [{ rule: '-w /etc/network -p wa -k network', why: 'interfaces, bridges or addresses changed' }] },
  {
    heading: 'Where packages come from',
    lines: [
      { rule: '-w /etc/apt/sources.list -p wa -k apt-sources', why: 'the APT sources changed' },
      { rule: '-w /etc/apt/sources.list.d -p wa -k apt-sources', why: 'an APT source added, changed or removed' },
    ],
  },
  { heading: 'Who fail2ban bans and never bans', lines: [{ rule: '-w /etc/fail2ban -p wa -k fail2ban', why: 'fail2ban configuration changed' }] },
];

/** Every rule line, in order. */
export const RULE_LINES: string[] = RULES.flatMap((g) => g.lines.map((l) => l.rule));

export function renderRules(): string {
  const out = [
    '## Written by pve-baseline (step "audit-log"); loaded by augenrules --load.',
    '## Search a key with: ausearch -i -k KEY',
    '',
  ];
  for (const group of RULES) {
    out.push(...group.heading.split('\n').map((line) => `# ${line}`));
    for (const line of group.lines) out.push(`# ${line.why}`, line.rule);
    out.push('');
  }
  return out.join('\n');
}

/** The rotation the baseline wants when the node's is not bounded (the values auditd itself ships). */
const ROTATION_DEFAULT = { max_log_file: '8', num_logs: '5' } as const;
/** At most this many MB of audit logs under /var/log/audit. */
const ROTATION_LIMIT_MB = 1024;

/** Whether auditd.conf keeps a bounded set of logs: ROTATE, 2 to 99 files, together at most ROTATION_LIMIT_MB. */
export function rotationProblems(conf: Map<string, string>): string[] {
  const problems: string[] = [];
  const action = conf.get('max_log_file_action') ?? 'ROTATE';
  if (action.toUpperCase() !== 'ROTATE') problems.push(`max_log_file_action is ${action} (KEEP_LOGS and IGNORE grow without bound; SUSPEND and HALT stop logging or the node)`);
  const num = Number(conf.get('num_logs') ?? '0');
  if (!Number.isInteger(num) || num < 2 || num > 99) problems.push(`num_logs is ${conf.get('num_logs') ?? 'unset'} (wanted 2 to 99; fewer than 2 does not rotate)`);
  const size = Number(conf.get('max_log_file') ?? '8');
  if (!Number.isInteger(size) || size < 1) problems.push(`max_log_file is ${conf.get('max_log_file')} (wanted a size in MB)`);
  else if (Number.isInteger(num) && num >= 2 && num * size > ROTATION_LIMIT_MB) problems.push(`num_logs x max_log_file is ${num * size} MB (wanted at most ${ROTATION_LIMIT_MB})`);
  return problems;
}

/** The keys to set: only those that break the bound, in auditd's own words. */
function rotationEdit(conf: Map<string, string>): Record<string, string> {
  const edit: Record<string, string> = {};
  if ((conf.get('max_log_file_action') ?? 'ROTATE').toUpperCase() !== 'ROTATE') edit.max_log_file_action = 'ROTATE';
  const num = Number(conf.get('num_logs') ?? '0');
  const size = Number(conf.get('max_log_file') ?? '8');
  const numOk = Number.isInteger(num) && num >= 2 && num <= 99;
  const sizeOk = Number.isInteger(size) && size >= 1;
  if (!numOk) edit.num_logs = ROTATION_DEFAULT.num_logs;
  if (!sizeOk) edit.max_log_file = ROTATION_DEFAULT.max_log_file;
  const n = numOk ? num : Number(ROTATION_DEFAULT.num_logs);
  const s = sizeOk ? size : Number(ROTATION_DEFAULT.max_log_file);
  if (n * s > ROTATION_LIMIT_MB) Object.assign(edit, ROTATION_DEFAULT);
  return edit;
}

export interface AuditFacts {
  /** Why the kernel audit system cannot be used here; undefined when it can. */
  unavailable?: string;
  installed: boolean;
  rulesFile: string | null;
  auditdConf: string | null;
  /** `auditctl -s` enabled: 2 means the rules are locked until a reboot. */
  enabled?: number;
  /** `auditctl -l`: the rules in force; undefined when auditctl is absent or failed. */
  live?: AuditRule[];
  liveError?: string;
  /** `systemctl is-active auditd.service`. */
  active: boolean;
}

async function installed(ctx: StepContext, pkg: string): Promise<boolean> {
  const r = await ctx.exec.run(['dpkg-query', '-W', '-f', '${Status}', pkg], { timeoutMs: 30_000 });
  return r.exitCode === 0 && / ok installed$/.test(r.stdout.trim());
}

/**
 * Why the kernel audit system is out of reach, from what cannot be wrong:
 * systemd-detect-virt --container (a container shares the host's kernel, so
 * /proc/self/loginuid is there, but the kernel refuses audit requests from
 * its PID namespace), /proc/self/loginuid (absent on a kernel without audit
 * support), audit=0 on the kernel command line, and, when auditctl is
 * installed, `auditctl -s` itself.
 */
async function unavailability(ctx: StepContext): Promise<string | undefined> {
  const virt = await ctx.exec.run(['systemd-detect-virt', '--container'], { timeoutMs: 30_000 });
  const kind = virt.stdout.trim();
  if (virt.exitCode === 0 && kind && kind !== 'none') {
    return `this node runs in a container (systemd-detect-virt: ${kind}): the kernel audit system belongs to the host, and the kernel refuses audit requests from a container's PID namespace`;
  }
  if ((await ctx.files.read('/proc/self/loginuid')) === null) return 'this kernel has no audit support (no /proc/self/loginuid)';
  const cmdline = (await ctx.files.read('/proc/cmdline')) ?? '';
  if (/(^|\s)audit=(0|off)(\s|$)/.test(cmdline)) return 'the kernel was booted with audit=0: it records nothing until it boots without it';
  return undefined;
}

async function probe(ctx: StepContext): Promise<AuditFacts> {
  const facts: AuditFacts = {
    installed: await installed(ctx, 'auditd'),
    rulesFile: await ctx.files.read(AUDIT_RULES_FILE),
    auditdConf: await ctx.files.read(AUDITD_CONF),
    active: false,
  };
  const unavailable = await unavailability(ctx);
  if (unavailable) return { ...facts, unavailable };
  if (!facts.installed) return facts;
  const status = await ctx.exec.run(['auditctl', '-s'], { timeoutMs: 30_000 });
  if (status.exitCode !== 0) {
    const said = (status.stderr || status.stdout).trim().split('\n')[0] ?? '';
    return { ...facts, unavailable: `auditctl -s cannot reach the kernel audit system${said ? ` (${said})` : ''}` };
  }
  const enabled = parseAuditEnabled(status.stdout);
  const list = await ctx.exec.run(['auditctl', '-l'], { timeoutMs: 30_000 });
  const active = await ctx.exec.run(['systemctl', 'is-active', 'auditd.service'], { timeoutMs: 30_000 });
  return {
    ...facts,
    ...(enabled !== undefined ? { enabled } : {}),
    ...(list.exitCode === 0 ? { live: parseAuditctlList(list.stdout) } : { liveError: (list.stderr || list.stdout).trim() || `auditctl -l exited with ${list.exitCode}` }),
    active: active.stdout.trim() === 'active',
  };
}

/** Our rules missing from what the kernel holds. */
function missingLive(live: readonly AuditRule[] | undefined): string[] {
  const held = new Set((live ?? []).map(ruleIdentity));
  return RULE_LINES.filter((line) => !held.has(ruleIdentity(auditRules(line)[0]!)));
}

export const auditLogStep: Step<AuditFacts> = {
  id: 'audit-log',
  title: 'Audit log of security-relevant changes',
  summary: 'auditd records who changed accounts, sudo, sshd, PAM, the network, APT sources, fail2ban and, by hand, /etc/pve; its logs stay bounded.',
  scope: 'node',
  risk: 'safe',

  probe,

  notApplicable(facts) {
    return facts.unavailable;
  },

  preflight(facts) {
    const problems = validateAuditRules(renderRules());
    const checks: Check[] = [
      { label: `${AUDIT_RULES_FILE} is a file auditctl -R loads`, ok: problems.length === 0, ...(problems.length ? { detail: problems.map((p) => `line ${p.line}: ${p.problem}`).join('; ') } : {}) },
    ];
    if (facts.enabled === 2) {
      checks.push({ label: 'the audit rules can be changed now', ok: false, detail: 'auditctl -s says enabled 2: the rules are locked (-e 2) until the next reboot; reboot, then run this step' });
    }
    return checks;
  },

  plan(facts) {
    const changes: Change[] = [];
    if (!facts.installed) {
      changes.push({
        kind: 'command',
        argv: ['apt-get', 'install', '-y', 'auditd'],
        // No undo: removing a package on a rollback could take what other packages need; its own config stays as Debian ships it.
        reason: 'auditd writes the kernel audit records to /var/log/audit and brings auditctl and augenrules (from the node’s own repositories)',
      });
    }
    const wanted = renderRules();
    const rulesChange = facts.rulesFile !== wanted;
    if (rulesChange) {
      changes.push({ kind: 'file', path: AUDIT_RULES_FILE, before: facts.rulesFile, after: wanted, mode: 0o640, owner: { uid: 0, gid: 0 }, reason: `the baseline's ${RULE_LINES.length} audit rules, each with a key and its reason` });
    }
    // Before the package is installed its auditd.conf is not there to edit: auditd ships a bounded
    // rotation (ROTATE, 5 x 8 MB), which verify then checks like any other.
    if (facts.auditdConf !== null) {
      const conf = readAuditdConf(facts.auditdConf);
      if (rotationProblems(conf).length) {
        const edit = rotationEdit(conf);
        changes.push({
          kind: 'file',
          path: AUDITD_CONF,
          before: facts.auditdConf,
          after: editAuditdConf(facts.auditdConf, edit),
          reason: `bounded audit logs: ${Object.entries(edit).map(([k, v]) => `${k} = ${v}`).join(', ')} (${rotationProblems(conf).join('; ')})`,
        });
        changes.push({
          kind: 'command',
          // No undo here: a rollback runs undos before it restores older files; afterRollback signals again.
          argv: ['systemctl', 'kill', '--signal=HUP', 'auditd.service'],
          reason: 'auditd re-reads auditd.conf on SIGHUP; its unit refuses a manual stop (RefuseManualStop=yes), so it is not restarted',
        });
      }
    }
    if (facts.installed && !facts.active) {
      changes.push({ kind: 'service', unit: 'auditd.service', action: 'start', reason: 'auditd is not running: the kernel’s records would go nowhere' });
    }
    if (rulesChange || missingLive(facts.live).length > 0) {
      changes.push({
        kind: 'command',
        argv: ['augenrules', '--load'],
        reason: rulesChange ? 'compiles rules.d into /etc/audit/audit.rules and loads it into the kernel now' : `the kernel lacks ${missingLive(facts.live).length} of the baseline's rules: loads rules.d again`,
      });
    }
    return changes;
  },

  // The engine puts the files back; auditd still runs with the old auditd.conf and the kernel still
  // holds the rules loaded from ours until these. Failures are logged (auditd may never have been installed).
  async afterRollback(ctx) {
    for (const argv of [['systemctl', 'kill', '--signal=HUP', 'auditd.service'], ['augenrules', '--load']]) {
      const r = await ctx.exec.run(argv, { timeoutMs: 60_000 });
      if (r.exitCode !== 0 && !r.notFound) ctx.log(`${argv.join(' ')} after the rollback: ${(r.stderr || r.stdout).trim()}`);
    }
  },

  async verify(ctx) {
    const facts = await probe(ctx);
    if (facts.unavailable) return [{ label: 'the kernel audit system is reachable', ok: false, detail: facts.unavailable }];
    const checks: Check[] = [{ label: 'auditd is installed', ok: facts.installed }];
    checks.push({ label: `${AUDIT_RULES_FILE} holds the baseline's rules`, ok: facts.rulesFile === renderRules(), ...(facts.rulesFile === null ? { detail: 'missing' } : facts.rulesFile !== renderRules() ? { detail: 'differs' } : {}) });
    if (facts.live === undefined) checks.push({ label: 'auditctl -l lists the rules in force', ok: false, detail: facts.liveError ?? 'auditctl is not installed' });
    else {
      const missing = missingLive(facts.live);
      checks.push({ label: `the kernel holds all ${RULE_LINES.length} rules (auditctl -l)`, ok: missing.length === 0, ...(missing.length ? { detail: `missing: ${missing.join('; ')}` } : {}) });
    }
    checks.push({ label: 'auditd is running', ok: facts.active });
    const conf = facts.auditdConf === null ? null : readAuditdConf(facts.auditdConf);
    const rotation = conf ? rotationProblems(conf) : ['auditd.conf is missing'];
    checks.push({ label: 'the audit logs are bounded (auditd.conf rotates)', ok: rotation.length === 0, ...(rotation.length ? { detail: rotation.join('; ') } : {}) });
    return checks;
  },

  document: (ctx) => auditDocument(ctx),
};

/** The audit section of the access-policy document: the rules in force, each with its key, and the log bound. */
export async function auditDocument(ctx: StepContext): Promise<DocumentSection> {
  const facts = await probe(ctx);
  const evidence = ['systemd-detect-virt --container', 'read /proc/self/loginuid', 'read /proc/cmdline', `read ${AUDIT_RULES_FILE}`, `read ${AUDITD_CONF}`];
  if (facts.unavailable) {
    return { heading: 'Audit log', blocks: [paragraph(`The kernel audit system is not used on this node: ${facts.unavailable}.`)], evidence };
  }
  const why = new Map(RULES.flatMap((g) => g.lines.map((l) => [ruleIdentity(auditRules(l.rule)[0]!), l.why] as const)));
  const live = facts.live ?? [];
  const conf = facts.auditdConf === null ? null : readAuditdConf(facts.auditdConf);
  const blocks = [
    paragraph(
      facts.live === undefined
        ? `The rules in force could not be read (${facts.liveError ?? 'auditd is not installed'}).`
        : `${live.length} audit rule${live.length === 1 ? '' : 's'} in force (${code('auditctl -l')}); search one key with ${code('ausearch -i -k KEY')}.`,
    ),
    ...(live.length
      ? [table(['Rule', 'Key', 'Why'], live.map((r) => [`\`${ruleIdentity(r)}\``, r.kind === 'control' ? '' : r.keys.join(', '), why.get(ruleIdentity(r)) ?? 'not set by pve-baseline']))]
      : []),
    bullets([
      conf
        ? `Logs: ${code(conf.get('log_file') ?? '/var/log/audit/audit.log')}, ${code(`max_log_file_action = ${conf.get('max_log_file_action') ?? 'ROTATE'}`)}, ${code(`num_logs = ${conf.get('num_logs') ?? '?'}`)} of ${code(`max_log_file = ${conf.get('max_log_file') ?? '?'}`)} MB.`
        : 'Logs: auditd.conf is missing.',
      `auditd is ${facts.active ? 'running' : 'not running'}; rules are ${facts.enabled === 2 ? 'locked until the next reboot (-e 2)' : 'changeable (not locked with -e 2)'}.`,
      'Edits of /etc/pve through the API or the web UI are in the Proxmox task log, not here: only login sessions are recorded (auid!=unset).',
    ]),
  ];
  return { heading: 'Audit log', blocks, evidence: [...evidence, 'auditctl -s', 'auditctl -l', 'systemctl is-active auditd.service'] };
}
