/**
 * Linux accounts as the files describe them (/etc/passwd, /etc/group,
 * /etc/shadow), and the rules a new admin's name must follow: Debian's
 * (adduser's NAME_REGEX, 32 characters) and Proxmox's (NAME@pam must be a
 * valid userid: src/pve/names.ts), each refusal saying why.
 */
import type { Files } from './files.ts';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** What the shadow file says of a password: set, locked, none, or empty (no password needed!). */
export type PasswordState = 'set' | 'locked' | 'none' | 'empty';

export function parsePasswd(text: string): PasswdEntry[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 7)
    .map(([name, , uid, gid, gecos, home, shell]) => ({ name: name!, uid: Number(uid), gid: Number(gid), gecos: gecos!, home: home!, shell: shell! }));
}

export function parseGroup(text: string): GroupEntry[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 4)
    .map(([name, , gid, members]) => ({ name: name!, gid: Number(gid), members: members ? members.split(',').filter(Boolean) : [] }));
}

/** The password state per user; the hashes themselves are never kept. */
export function parseShadow(text: string): Map<string, PasswordState> {
  const out = new Map<string, PasswordState>();
  for (const line of text.split('\n')) {
    const [name, hash] = line.split(':');
    if (!name || hash === undefined) continue;
    out.set(name, hash === '' ? 'empty' : hash === '*' || hash === '!' || hash === '!*' ? 'none' : hash.startsWith('!') ? 'locked' : 'set');
  }
  return out;
}

export interface Accounts {
  users: PasswdEntry[];
  groups: GroupEntry[];
  passwords: Map<string, PasswordState>;
}

export async function readAccounts(files: Pick<Files, 'read'>): Promise<Accounts> {
  return {
    users: parsePasswd((await files.read('/etc/passwd')) ?? ''),
    groups: parseGroup((await files.read('/etc/group')) ?? ''),
    // Only root may read the shadow file; a read-only run as another user knows no password states.
    passwords: parseShadow((await files.read('/etc/shadow').catch(() => null)) ?? ''),
  };
}

/** A personal account with the places its SSH keys live. */
export interface AccountHome extends PasswdEntry {
  /** HOME/.ssh */
  sshDir: string;
  /** HOME/.ssh/authorized_keys */
  authorizedKeys: string;
}

/**
 * The account NAME as the node has it now, with the places its SSH keys
 * live; undefined when there is no such account (or no name was given). The
 * one place the admin's account, home and key file are found.
 */
export async function findAccount(files: Pick<Files, 'read'>, name: string | undefined): Promise<{ accounts: Accounts; account: AccountHome | undefined }> {
  const accounts = await readAccounts(files);
  const user = name === undefined ? undefined : accounts.users.find((u) => u.name === name);
  return { accounts, account: user && { ...user, sshDir: `${user.home}/.ssh`, authorizedKeys: `${user.home}/.ssh/authorized_keys` } };
}

export function memberOf(accounts: Accounts, user: string, group: string): boolean {
  const g = accounts.groups.find((x) => x.name === group);
  const u = accounts.users.find((x) => x.name === user);
  return !!g && (g.members.includes(user) || (u !== undefined && u.gid === g.gid));
}

/** Names Debian and Proxmox nodes use for services, refused even before such a package is installed. */
const RESERVED = new Set([
  'root', 'daemon', 'bin', 'sys', 'sync', 'games', 'man', 'lp', 'mail', 'news', 'uucp', 'proxy', 'www-data', 'backup',
  'list', 'irc', 'gnats', 'nobody', 'sshd', 'messagebus', 'postfix', 'ceph', 'tss', 'statd', 'rpc', '_apt',
]);

/** Debian's adduser NAME_REGEX, without the trailing $ it allows for machine accounts. */
const DEBIAN_NAME = /^[a-z][-a-z0-9_]*$/;
export const NAME_MAX = 32;

/**
 * Why `name` cannot be a new personal admin account (undefined when it can).
 * An existing human account (uid 1000 or more) may be adopted.
 */
export function adminNameProblem(name: string, users: readonly PasswdEntry[] = []): string | undefined {
  if (name === 'root') return 'root is the account this step replaces for daily work; choose a personal name (e.g. alice)';
  if (/\s/.test(name)) return 'must not contain spaces';
  if (name.startsWith('-')) return 'must not start with a dash (programs would read it as an option)';
  if (name.length > NAME_MAX) return `is ${name.length} characters long; Linux allows at most ${NAME_MAX}`;
  if (/[A-Z]/.test(name)) return `must be lower case: Linux account names are, and the Proxmox user would be ${name}@pam exactly as typed`;
  if (!DEBIAN_NAME.test(name)) return 'may use lower-case letters, digits, - and _, and must start with a letter';
  const existing = users.find((u) => u.name === name);
  if (existing && existing.uid < 1000) return `is the system account ${name} (uid ${existing.uid}); choose a personal name`;
  if (existing && existing.uid === 65534) return `is the system account ${name}; choose a personal name`;
  if (!existing && (RESERVED.has(name) || name.startsWith('systemd-') || name.startsWith('_'))) {
    return `is a name Debian or Proxmox reserves for a service account; choose a personal name`;
  }
  return undefined;
}

/** A crypt(3) hash as chpasswd -e takes it: yescrypt, SHA-512, SHA-256 or bcrypt. */
export const CRYPT_HASH = /^\$(y|gy|7|6|5|2[abxy])\$[./0-9A-Za-z$,=]{8,}$/;
