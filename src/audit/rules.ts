/**
 * Audit rules as `auditctl -R` reads them (what `augenrules --load` feeds it
 * from /etc/audit/rules.d/*.rules), and as `auditctl -l` lists them back.
 * Pure: no process is run here.
 *
 * `auditctl -R` takes one auditctl command per line, split on white space
 * (no shell: quotes are kept literally), `#` comments and blank lines
 * ignored, and stops at the first line it refuses. So a rules file is valid
 * only when every line is one of:
 *   -w PATH [-p PERMS] [-k KEY]...               a watch on a file or directory
 *   -a|-A ACTION,LIST [-S SYSCALL]... [-F FIELD OP VALUE]... [-k KEY]...
 *   -D | -b N | -f 0|1|2 | -e 0|1|2 | -r N | --backlog_wait_time N | --loginuid-immutable | -i | -c
 * and no rule appears twice (the kernel answers the second "Rule exists").
 */

/** linux/audit.h AUDIT_MAX_KEY_LEN: all keys of a rule together. */
export const AUDIT_MAX_KEY_LEN = 256;
/** PATH_MAX, the longest path a watch may name. */
const PATH_MAX = 4096;

export type AuditRule =
  | { kind: 'watch'; path: string; perms: string; keys: string[] }
  | { kind: 'syscall'; action: 'always' | 'never'; list: string; syscalls: string[]; fields: AuditField[]; keys: string[] }
  | { kind: 'control'; option: string; value?: string };

export interface AuditField {
  name: string;
  op: string;
  value: string;
}

const ACTIONS = new Set(['always', 'never']);
const LISTS = new Set(['task', 'exit', 'user', 'exclude', 'filesystem', 'io_uring']);
/** Lists whose rules take system calls (-S). */
const SYSCALL_LISTS = new Set(['exit', 'io_uring']);
/** Longest operators first, so `!=` is not read as `!` then `=`. */
const OPERATORS = ['&=', '!=', '<=', '>=', '=', '<', '>', '&'];
/** The field names auditctl knows (libaudit's fieldtab), as far as rules here may use them. */
const FIELDS = new Set([
  'a0', 'a1', 'a2', 'a3', 'arch', 'auid', 'loginuid', 'devmajor', 'devminor', 'dir', 'egid', 'euid', 'exe', 'exit', 'field_compare',
  'filetype', 'fsgid', 'fstype', 'fsuid', 'gid', 'inode', 'key', 'msgtype', 'obj_gid', 'obj_lev_high', 'obj_lev_low', 'obj_role', 'obj_type',
  'obj_uid', 'obj_user', 'path', 'perm', 'pers', 'pid', 'ppid', 'saddr_fam', 'sessionid', 'sgid', 'subj_clr', 'subj_role', 'subj_sen',
  'subj_type', 'subj_user', 'success', 'suid', 'uid',
]);
/** Fields that hold a user id: a number, a user name, or `unset` (-1, 4294967295). */
const UID_FIELDS = new Set(['auid', 'loginuid', 'uid', 'euid', 'suid', 'fsuid', 'obj_uid']);
const NUMBER_FIELDS = new Set(['pid', 'ppid', 'sessionid', 'exit', 'success', 'a0', 'a1', 'a2', 'a3', 'inode', 'devmajor', 'devminor', 'pers', 'saddr_fam']);
const ARCHES = new Set(['b32', 'b64', 'x86_64', 'i386', 'i486', 'i586', 'i686', 'aarch64', 'arm', 'armeb', 'ppc64', 'ppc64le', 'ppc', 's390x', 's390', 'riscv64', 'loongarch64']);

/** Controls a rules file may hold, and whether each takes a value (and which). */
const CONTROLS: Record<string, RegExp | null> = {
  '-D': null,
  '-i': null,
  '-c': null,
  '--loginuid-immutable': null,
  '-b': /^\d{1,9}$/,
  '-r': /^\d{1,9}$/,
  '--backlog_wait_time': /^\d{1,9}$/,
  '-f': /^[012]$/,
  '-e': /^[012]$/,
};

const PERMS = /^(?!.*(.).*\1)[rwxa]{1,4}$/;
const KEY = /^[^\s"'\\]+$/;

function problem(text: string): { problem: string } {
  return { problem: text };
}

function checkPath(path: string, what: string): string | undefined {
  if (/[\s"'\\]/.test(path)) return `${what} holds a quote, a backslash or white space, which auditctl -R does not strip`;
  if (!path.startsWith('/')) return `${what} must be an absolute path (it is ${JSON.stringify(path)})`;
  if (path.length > PATH_MAX) return `${what} is longer than ${PATH_MAX} characters`;
  if (path.split('/').includes('..')) return `${what} must not contain ".."`;
  return undefined;
}

function checkKeys(keys: string[]): string | undefined {
  for (const key of keys) if (!KEY.test(key)) return `key ${JSON.stringify(key)} holds a quote, a backslash or white space`;
  const total = keys.join('\u0001').length;
  if (total > AUDIT_MAX_KEY_LEN) return `the keys are ${total} characters together; the kernel takes at most ${AUDIT_MAX_KEY_LEN}`;
  return undefined;
}

function checkField(field: AuditField, list: string): string | undefined {
  const { name, op, value } = field;
  if (!FIELDS.has(name)) return `-F ${name}: not a field auditctl knows`;
  if (value === '') return `-F ${name}${op}: no value`;
  if (/["'\\\s]/.test(value)) return `-F ${name}: the value holds a quote, a backslash or white space, which auditctl -R does not strip`;
  const equality = op === '=' || op === '!=';
  switch (name) {
    case 'path':
    case 'dir':
    case 'exe': {
      if (!equality) return `-F ${name} takes only = or !=`;
      if (name !== 'exe' && list !== 'exit') return `-F ${name} works only on the exit list`;
      return checkPath(value, `-F ${name}`);
    }
    case 'perm':
      if (op !== '=') return '-F perm takes only =';
      if (list !== 'exit') return '-F perm works only on the exit list';
      return PERMS.test(value) ? undefined : `-F perm=${value}: wants some of r, w, x, a, each once`;
    case 'key':
      if (op !== '=') return '-F key takes only =';
      return checkKeys([value]);
    case 'arch':
      if (!equality) return '-F arch takes only = or !=';
      return ARCHES.has(value) ? undefined : `-F arch=${value}: not an architecture (wanted b64, b32 or a machine name)`;
    case 'success':
      return /^[01]$/.test(value) ? undefined : '-F success wants 0 or 1';
    default:
      if (UID_FIELDS.has(name)) return /^(-1|\d{1,10}|unset|[a-z_][a-z0-9_.-]{0,31}\$?)$/.test(value) ? undefined : `-F ${name}=${value}: wants a user id, a user name or unset`;
      if (NUMBER_FIELDS.has(name)) return /^-?\d{1,20}$|^0x[0-9a-f]{1,16}$/i.test(value) ? undefined : `-F ${name}=${value}: wants a number`;
      return undefined;
  }
}

/**
 * One line of a rules file (or of `auditctl -l`) read as auditctl reads it:
 * the rule, null for a comment or a blank line, or what auditctl would refuse.
 */
export function parseAuditLine(line: string): AuditRule | null | { problem: string } {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return null;
  const tokens = text.split(/\s+/);
  const first = tokens[0]!;
  if (first in CONTROLS) {
    const wants = CONTROLS[first]!;
    if (wants === null) return tokens.length === 1 ? { kind: 'control', option: first } : problem(`${first} takes no value`);
    if (tokens.length !== 2 || !wants.test(tokens[1]!)) return problem(`${first} wants one value matching ${wants.source}`);
    return { kind: 'control', option: first, value: tokens[1]! };
  }
  let watch: { path: string; perms?: string } | undefined;
  let rule: { action: 'always' | 'never'; list: string } | undefined;
  const syscalls: string[] = [];
  const fields: AuditField[] = [];
  const keys: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const option = tokens[i]!;
    const value = tokens[i + 1];
    const needValue = () => value === undefined || value.startsWith('-') && !/^-\d/.test(value);
    switch (option) {
      case '-w': {
        if (i !== 0) return problem('-w must start the line');
        if (needValue()) return problem('-w wants a path');
        const bad = checkPath(value!, 'the watched path');
        if (bad) return problem(bad);
        watch = { path: value! };
        i++;
        break;
      }
      case '-p':
        if (!watch) return problem('-p belongs to a -w watch (use -F perm= in a -a rule)');
        if (needValue() || !PERMS.test(value!)) return problem(`-p wants some of r, w, x, a, each once (it is ${JSON.stringify(value ?? '')})`);
        watch.perms = value!;
        i++;
        break;
      case '-a':
      case '-A': {
        if (i !== 0) return problem(`${option} must start the line`);
        if (needValue()) return problem(`${option} wants ACTION,LIST (e.g. always,exit)`);
        const parts = value!.split(',');
        const action = parts.find((p) => ACTIONS.has(p));
        const list = parts.find((p) => LISTS.has(p));
        if (parts.length !== 2 || !action || !list) return problem(`${option} ${value}: wants one action (always, never) and one list (${[...LISTS].join(', ')})`);
        rule = { action: action as 'always' | 'never', list };
        i++;
        break;
      }
      case '-S':
        if (!rule) return problem('-S belongs to a -a rule');
        if (!SYSCALL_LISTS.has(rule.list)) return problem(`-S does not apply to the ${rule.list} list`);
        if (needValue() || !/^([a-z0-9_]+)(,[a-z0-9_]+)*$/.test(value!)) return problem(`-S wants a system call name or number (it is ${JSON.stringify(value ?? '')})`);
        syscalls.push(...value!.split(','));
        i++;
        break;
      case '-F': {
        if (!rule) return problem('-F belongs to a -a rule');
        if (value === undefined) return problem('-F wants FIELD OP VALUE');
        const op = OPERATORS.map((o) => ({ o, at: value.indexOf(o) })).filter((x) => x.at > 0).sort((a, b) => a.at - b.at || b.o.length - a.o.length)[0];
        if (!op) return problem(`-F ${value}: no operator (=, !=, <, >, <=, >=, &, &=)`);
        const field = { name: value.slice(0, op.at), op: op.o, value: value.slice(op.at + op.o.length) };
        const bad = checkField(field, rule.list);
        if (bad) return problem(bad);
        if (field.name === 'key') keys.push(field.value);
        else fields.push(field);
        i++;
        break;
      }
      case '-k':
        if (!watch && !rule) return problem('-k belongs to a -w watch or a -a rule');
        if (needValue()) return problem('-k wants a key');
        keys.push(value!);
        i++;
        break;
      default:
        return problem(`${option}: not an option auditctl -R takes in a rules file here`);
    }
  }
  const badKeys = checkKeys(keys);
  if (badKeys) return problem(badKeys);
  if (watch) return { kind: 'watch', path: watch.path, perms: watch.perms ?? 'rwxa', keys };
  if (!rule) return problem('neither a -w watch nor a -a rule');
  if (rule.list === 'exit' && syscalls.length === 0 && fields.length === 0) return problem('a -a rule on the exit list with neither -S nor -F would record every system call');
  return { kind: 'syscall', ...rule, syscalls, fields, keys };
}

/** One problem of a rules file: its line number (from 1), the line, and why auditctl -R would refuse it. */
export interface RulesProblem {
  line: number;
  text: string;
  problem: string;
}

/** Every line auditctl -R would refuse, and every rule given twice; [] when the file loads. */
export function validateAuditRules(text: string): RulesProblem[] {
  const problems: RulesProblem[] = [];
  const seen = new Map<string, number>();
  text.split('\n').forEach((raw, index) => {
    const parsed = parseAuditLine(raw);
    if (parsed === null) return;
    if ('problem' in parsed) {
      problems.push({ line: index + 1, text: raw, problem: parsed.problem });
      return;
    }
    if (parsed.kind === 'control') return;
    const key = ruleIdentity(parsed);
    const earlier = seen.get(key);
    if (earlier !== undefined) problems.push({ line: index + 1, text: raw, problem: `the same rule as line ${earlier}: auditctl -R stops there ("Rule exists")` });
    else seen.set(key, index + 1);
  });
  return problems;
}

/** The rules of a file (or of `auditctl -l` output), skipping controls, comments and refused lines. */
export function auditRules(text: string): AuditRule[] {
  const out: AuditRule[] = [];
  for (const line of text.split('\n')) {
    const parsed = parseAuditLine(line);
    if (parsed && !('problem' in parsed) && parsed.kind !== 'control') out.push(parsed);
  }
  return out;
}

/**
 * A rule as the kernel holds it, for comparing a rules file with `auditctl
 * -l`: the listing writes a rule without -S as `-S all`, a key as `-F key=`,
 * an unset login uid as `unset` (older versions -1), and perms in r, w, x, a order.
 */
export function ruleIdentity(rule: AuditRule): string {
  const perms = (p: string) => ['r', 'w', 'x', 'a'].filter((c) => p.includes(c)).join('');
  if (rule.kind === 'watch') return `-w ${rule.path} -p ${perms(rule.perms)} ${rule.keys.map((k) => `-k ${k}`).join(' ')}`.trim();
  if (rule.kind === 'control') return `${rule.option} ${rule.value ?? ''}`.trim();
  const syscalls = rule.syscalls.length === 0 || rule.syscalls.includes('all') ? ['all'] : [...rule.syscalls].sort();
  const fields = rule.fields.map((f) => {
    let value = f.value;
    if (UID_FIELDS.has(f.name) && (value === '-1' || value === '4294967295')) value = 'unset';
    if (f.name === 'perm') value = perms(value);
    return `${f.name}${f.op}${value}`;
  });
  return [`-a ${rule.action},${rule.list}`, `-S ${syscalls.join(',')}`, ...fields.map((f) => `-F ${f}`), ...rule.keys.map((k) => `-k ${k}`)].join(' ');
}

/** `auditctl -l` output: the rules in force ("No rules" is none). */
export function parseAuditctlList(stdout: string): AuditRule[] {
  return auditRules(stdout.split('\n').filter((l) => l.trim() !== 'No rules').join('\n'));
}

/** `auditctl -s`: the `enabled` value (0 off, 1 on, 2 on and locked until reboot), or undefined. */
export function parseAuditEnabled(stdout: string): number | undefined {
  const m = /^enabled\s+(\d+)/m.exec(stdout);
  return m ? Number(m[1]) : undefined;
}

// --- auditd.conf --------------------------------------------------------------

/** The keys of auditd.conf (`key = value` lines), last one winning, names lower-cased. */
export function readAuditdConf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m && !line.trimStart().startsWith('#')) out.set(m[1]!.toLowerCase(), m[2]!);
  }
  return out;
}

/**
 * A precise edit: each given key's line rewritten in place as `key = value`
 * (every active line of it), a key that is absent added at the end;
 * everything else (comments, order, other keys) byte for byte as it was.
 */
export function editAuditdConf(text: string, wanted: Readonly<Record<string, string>>): string {
  const done = new Set<string>();
  const lines = text.split('\n').map((line) => {
    const m = /^(\s*)([A-Za-z_]+)(\s*=\s*)(.*?)\s*$/.exec(line);
    if (!m || line.trimStart().startsWith('#')) return line;
    const key = m[2]!.toLowerCase();
    if (!(key in wanted)) return line;
    done.add(key);
    return `${m[1]}${m[2]}${m[3]}${wanted[key]}`;
  });
  const missing = Object.keys(wanted).filter((k) => !done.has(k));
  if (missing.length) {
    if (lines.length && lines[lines.length - 1] === '') lines.pop();
    lines.push(...missing.map((k) => `${k} = ${wanted[k]}`), '');
  }
  return lines.join('\n');
}
