/**
 * A named admin account, so that nobody needs root for daily work (root
 * leaves no trail of who did what): a Linux user in the sudo group with a
 * password for sudo, and the matching Proxmox user NAME@pam (realm pam: the
 * same account logs in over SSH and to the web UI) with a role on / —
 * Administrator, or PVEAdmin.
 *
 * An existing personal account may be adopted. Rollback undoes only what
 * this step did: it removes an account it created, takes an adopted one back
 * out of sudo, and removes the Proxmox user and ACL it added.
 */
import type { Change, CommandChange } from '../src/engine/change.ts';
import { Secret } from '../src/system/secret.ts';
import { ask, characterProblem } from '../src/engine/questions.ts';
import type { Check, Step, StepContext } from '../src/engine/step.ts';
import { adminNameProblem, CRYPT_HASH, findAccount, memberOf, NAME_MAX, parsePasswd, readAccounts, type AccountHome, type Accounts } from '../src/system/accounts.ts';
import { runChecked } from '../src/system/exec.ts';
import { listAcl, listUsers, rolesOn, type PveAclEntry, type PveUser } from '../src/pve/pveum.ts';
import { code, paragraph, table, type DocumentSection } from '../src/report/section.ts';

export const ADMIN_ROLES = {
  Administrator: 'every privilege, including the root-only ones: node network and power (Sys.Modify, Sys.PowerMgmt), handing out permissions (Permissions.Modify), realms',
  PVEAdmin: 'nearly everything with guests, storage, users and pools, but not the root-only privileges above (no network, power or permission changes)',
} as const;

/** Proxmox's email format (pve-access-control), at most 254 characters. */
const PVE_EMAIL = /^[\w+~-]+(\.[\w+~-]+)*@[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*$/;

/** Proxmox allows 254 characters of email; a comment longer than this is a paste gone wrong. */
const EMAIL_MAX = 254;
const COMMENT_MAX = 200;
const ONE_PASSWORD = 'give either password or password_hash, not both';

export type AdminRole = keyof typeof ADMIN_ROLES;

/** What the step is told. A password or its hash only when the account has none yet; never journaled. */
export type AdminAnswers = {
  name: string;
  role: AdminRole;
  /** "" when none */
  email: string;
  /** "" when none */
  comment: string;
  password_hash?: Secret;
  password?: Secret;
};

interface AdminFacts {
  accounts: Accounts;
  sudoInstalled: boolean;
  pveUsers: PveUser[];
  acl: PveAclEntry[];
}

const passwordSet = (facts: AdminFacts, name: unknown) => facts.accounts.passwords.get(String(name)) === 'set';

export const adminAccountStep: Step<AdminFacts, AdminAnswers> = {
  id: 'admin-account',
  title: 'Named admin account',
  summary: 'A personal Linux and Proxmox admin (NAME@pam) with sudo, so root is not used for daily work.',
  scope: 'node',
  risk: 'safe',

  questions: [
    ask.text({
      id: 'name',
      prompt: 'Name of your admin account',
      help: 'Your personal login for SSH, sudo and the web UI (as NAME@pam). An existing personal account is adopted.',
      maxLength: NAME_MAX,
      limitSetBy: 'Linux',
      detect: (facts) => {
        const people = facts.accounts.users.filter((u) => u.uid >= 1000 && u.uid < 65534);
        return people.length === 1 ? people[0]!.name : undefined;
      },
      check: async (value, _answers, ctx) => adminNameProblem(value, parsePasswd((await ctx.files.read('/etc/passwd')) ?? '')),
    }),
    ask.select({
      id: 'role',
      prompt: 'Proxmox role on / (the whole datacenter)',
      help: `Administrator: ${ADMIN_ROLES.Administrator}. PVEAdmin: ${ADMIN_ROLES.PVEAdmin}.`,
      choices: [
        { value: 'Administrator', label: 'Administrator', hint: 'everything, like root@pam' },
        { value: 'PVEAdmin', label: 'PVEAdmin', hint: 'no network, power or permission changes' },
      ],
      detect: () => 'Administrator',
    }),
    ask.text({
      id: 'email',
      optional: true,
      prompt: 'Email for Proxmox notifications (optional)',
      maxLength: EMAIL_MAX,
      check: (value) => (PVE_EMAIL.test(value) ? undefined : 'wants an email address such as alice@example.com'),
    }),
    ask.text({
      id: 'comment',
      optional: true,
      prompt: 'Full name or comment (optional)',
      maxLength: COMMENT_MAX,
      // A colon would end the field in /etc/passwd.
      check: (value) => (value.includes(':') ? 'must not contain a colon' : undefined),
    }),
    ask.secretText({
      id: 'password_hash',
      fileOnly: true,
      prompt: 'crypt(3) hash of the password',
      maxLength: 512,
      when: (answers, facts) => !passwordSet(facts, answers.name),
      check: (value, answers) =>
        answers.password !== undefined ? ONE_PASSWORD : CRYPT_HASH.test(value) ? undefined : 'wants a crypt(3) hash such as $y$j9T$... (make one with: mkpasswd -m yescrypt)',
    }),
    ask.password({
      id: 'password',
      minLength: 12,
      prompt: 'Password for sudo',
      help: 'Asked by sudo, and for the web UI login. Typed twice, never shown, never stored by pve-baseline.',
      when: (answers, facts) => !passwordSet(facts, answers.name) && answers.password_hash === undefined,
      check: (_value, answers) => (answers.password_hash !== undefined ? ONE_PASSWORD : undefined),
    }),
  ],

  async probe(ctx) {
    const sudo = await ctx.exec.run(['dpkg-query', '-W', '-f=${db:Status-Status}', 'sudo']);
    return {
      accounts: await readAccounts(ctx.files),
      sudoInstalled: sudo.exitCode === 0 && sudo.stdout.trim() === 'installed',
      pveUsers: await listUsers(ctx.exec),
      acl: await listAcl(ctx.exec),
    };
  },

  requires: (node) => (node.proxmox ? undefined : 'needs a Proxmox VE node (pveum)'),

  plan(facts, answers) {
    const { name, role } = answers;
    const userid = `${name}@pam`;
    const existing = facts.accounts.users.find((u) => u.name === name);
    const changes: Change[] = [];
    if (!facts.sudoInstalled) {
      changes.push({
        kind: 'command',
        argv: ['apt-get', 'install', '-y', '--no-install-recommends', 'sudo'],
        undo: ['apt-get', 'remove', '-y', 'sudo'],
        reason: 'a fresh Proxmox VE node has no sudo; the admin needs it for the tasks that require root',
      });
    }
    if (!existing) {
      changes.push({
        kind: 'command',
        argv: ['useradd', '--create-home', '--shell', '/bin/bash', '--groups', 'sudo', ...(answers.comment ? ['--comment', answers.comment] : []), name],
        undo: ['userdel', '--remove', name],
        reason: `creates ${name} with a home, a login shell and sudo`,
      });
    } else if (!memberOf(facts.accounts, name, 'sudo')) {
      changes.push({
        kind: 'command',
        argv: ['usermod', '--append', '--groups', 'sudo', name],
        undo: ['gpasswd', '--delete', name, 'sudo'],
        reason: `adopts the existing account ${name} (uid ${existing.uid}) and gives it sudo`,
      });
    }
    if (!passwordSet(facts, name)) changes.push(passwordChange(name, answers, facts, !existing));
    const pveUser = facts.pveUsers.find((u) => u.userid === userid);
    if (!pveUser) {
      changes.push({
        kind: 'command',
        argv: ['pveum', 'user', 'add', userid, ...(answers.email ? ['--email', answers.email] : []), ...(answers.comment ? ['--comment', answers.comment] : [])],
        undo: ['pveum', 'user', 'delete', userid],
        reason: 'the same account in Proxmox (realm pam checks the Linux password), for the web UI and the API',
      });
    } else if (pveUser.enable === 0) {
      changes.push({
        kind: 'command',
        argv: ['pveum', 'user', 'modify', userid, '--enable', '1'],
        undo: ['pveum', 'user', 'modify', userid, '--enable', '0'],
        reason: `${userid} exists but is disabled`,
      });
    }
    if (!rolesOn(facts.acl, userid, '/').includes(role)) {
      changes.push({
        kind: 'command',
        argv: ['pveum', 'acl', 'modify', '/', '--users', userid, '--roles', role],
        undo: ['pveum', 'acl', 'delete', '/', '--users', userid, '--roles', role],
        reason: `${role} on / and everything below it: ${ADMIN_ROLES[role]}`,
      });
    }
    return changes;
  },

  document: (ctx, answers) => adminDocument(ctx, answers.name),

  async verify(ctx, answers) {
    const { name, role } = answers;
    const userid = `${name}@pam`;
    const accounts = await readAccounts(ctx.files);
    const user = accounts.users.find((u) => u.name === name);
    const sudoList = await ctx.exec.run(['sudo', '-l', '-U', name]);
    const pveUser = (await listUsers(ctx.exec)).find((u) => u.userid === userid);
    const roles = rolesOn(await listAcl(ctx.exec), userid, '/');
    const checks: Check[] = [
      { label: `Linux account ${name} exists`, ok: !!user, ...(user ? { detail: `uid ${user.uid}, home ${user.home}, shell ${user.shell}` } : {}) },
      { label: `${name} is in the sudo group`, ok: memberOf(accounts, name, 'sudo') },
      { label: `${name} has a password (for sudo)`, ok: accounts.passwords.get(name) === 'set' },
      { label: `sudo lets ${name} run any command`, ok: sudoList.exitCode === 0 && /\(ALL(\s*:\s*ALL)?\)\s+ALL/.test(sudoList.stdout), ...(sudoList.exitCode !== 0 ? { detail: sudoList.stderr.trim() } : {}) },
      { label: `Proxmox user ${userid} exists and is enabled`, ok: pveUser?.enable === 1 },
      { label: `${userid} has ${role} on /`, ok: roles.includes(role), ...(roles.length ? { detail: `roles on /: ${roles.join(', ')}` } : {}) },
    ];
    return checks;
  },
};

/**
 * chpasswd reads "name:password" (or "name:hash" with --encrypted) on stdin;
 * never argv. One line exactly: the codecs refuse line breaks in every
 * answer, and this refuses again, so no answer can ever set another
 * account's password.
 */
function passwordChange(name: string, answers: AdminAnswers, facts: AdminFacts, created: boolean): CommandChange {
  const hash = answers.password_hash;
  const password = answers.password;
  const secret = hash ?? password;
  if (!secret || characterProblem(name) || characterProblem(secret.reveal(), { secret: true })) {
    throw new Error(`admin-account: no password, or one that is not a single line, for ${name}`);
  }
  const state = facts.accounts.passwords.get(name);
  // Undo for an adopted account: back to no usable password (a created one is removed whole).
  const undo = created ? undefined : state === 'none' ? ['usermod', '--password', '*', name] : ['usermod', '--lock', name];
  return {
    kind: 'command',
    argv: hash ? ['chpasswd', '--encrypted'] : ['chpasswd'],
    input: new Secret(`${name}:${secret.reveal()}\n`),
    hide: [secret],
    ...(undo ? { undo } : {}),
    reason: hash ? `sets ${name}'s password from the given hash, for sudo and the web UI` : `sets ${name}'s password, for sudo and the web UI (on standard input, never in the process list)`,
  };
}

/**
 * The admin account as the node has it now, with its home and key file: how
 * the steps after this one find it (by the name this step was given).
 */
export async function findAdmin(ctx: StepContext): Promise<{ accounts: Accounts; admin: AccountHome | undefined }> {
  const { accounts, account } = await findAccount(ctx.files, ctx.answersOf(adminAccountStep).name);
  return { accounts, admin: account };
}

const PASSWORD_STATES = { set: 'set', locked: 'locked', none: 'none (cannot log in with one)', empty: 'EMPTY: no password needed' } as const;

/**
 * The admin's part of the access-policy document, as the node has it now:
 * the Linux account, sudo, the password's state (never the hash), the
 * Proxmox user and its roles on /.
 */
export async function adminDocument(ctx: StepContext, name: string | undefined): Promise<DocumentSection> {
  const heading = 'Named admin account';
  if (!name) return { heading, blocks: [paragraph('pve-baseline has not set up a named admin account on this node: daily administration would need root.')] };
  const { accounts, account } = await findAccount(ctx.files, name);
  const userid = `${name}@pam`;
  const pveUser = (await listUsers(ctx.exec)).find((u) => u.userid === userid);
  const roles = rolesOn(await listAcl(ctx.exec), userid, '/');
  const password = accounts.passwords.get(name);
  return {
    heading,
    blocks: [
      paragraph(`Daily administration uses the personal account ${code(name)} instead of root, so logs say who did what; root is for provisioning and emergencies.`),
      table(
        ['Fact', 'Value'],
        [
          ['Linux account', account ? `${name} (uid ${account.uid}, home ${account.home}, shell ${account.shell})` : `${name}: MISSING`],
          ['sudo', memberOf(accounts, name, 'sudo') ? 'yes (sudo group)' : 'no'],
          ['Password (sudo, web UI)', password ? PASSWORD_STATES[password] : 'unknown'],
          ['Proxmox VE user', pveUser ? `${userid} (${pveUser.enable === 0 ? 'disabled' : 'enabled'})` : `${userid}: MISSING`],
          ['Roles on /', roles.length ? roles.map((r) => (r in ADMIN_ROLES ? `${r}: ${ADMIN_ROLES[r as AdminRole]}` : r)).join('; ') : 'none'],
        ],
      ),
    ],
    evidence: ['read /etc/passwd, /etc/group, /etc/shadow (password states only)', 'pveum user list --output-format json', 'pveum acl list --output-format json'],
  };
}
