/**
 * An optional break-glass account: one emergency admin
 * for the day the named admins cannot log in. It is created disabled — no
 * usable password, no key, its Proxmox user switched off — so it opens
 * nothing until someone follows the procedure below, which the access-policy
 * document prints. Off unless asked for.
 */
import type { Change } from '../src/engine/change.ts';
import type { Step, StepContext } from '../src/engine/step.ts';
import { ask } from '../src/engine/questions.ts';
import { adminNameProblem, memberOf, NAME_MAX, parsePasswd, parseShadow, readAccounts, type Accounts } from '../src/system/accounts.ts';
import { adminAccountStep } from './admin-account.ts';
import { listAcl, listUsers, rolesOn, type PveAclEntry, type PveUser } from '../src/pve/pveum.ts';
import { code, numbered, paragraph, table, type DocumentSection } from '../src/report/section.ts';

export const BREAK_GLASS_PURPOSE =
  'An emergency administrator for when the named admin accounts cannot be used (lost keys, a departed admin, a broken 2FA device). Disabled until needed.';

/** How to use it, for the access-policy document; NAME is the account. */
export function breakGlassProcedure(name: string): string[] {
  return [
    'Log in as root on the console (local, IPMI/iDRAC/iLO), because the account has no password and no key.',
    `Set a password and unlock it: passwd ${name}.`,
    `Enable the Proxmox user: pveum user modify ${name}@pam --enable 1.`,
    'Do the emergency work, recording who, when and why.',
    `Afterwards disable it again: usermod --lock ${name}; pveum user modify ${name}@pam --enable 0; then rotate any credential that was exposed.`,
  ];
}

interface BreakGlassFacts {
  accounts: Accounts;
  pveUsers: PveUser[];
  acl: PveAclEntry[];
}

const COMMENT = 'pve-baseline break-glass account (disabled until needed)';

/** What the step is told: whether to have the account, and its name when so. */
export type BreakGlassAnswers = {
  wanted: boolean;
  name?: string;
};

export const breakGlassStep: Step<BreakGlassFacts, BreakGlassAnswers> = {
  id: 'break-glass',
  title: 'Break-glass account (optional)',
  summary: 'An emergency admin, created disabled (no password, no key), with a documented procedure to enable it.',
  scope: 'node',
  risk: 'safe',
  dependsOn: ['admin-account'],

  questions: [
    ask.yesNo({
      id: 'wanted',
      prompt: 'Create a disabled break-glass account?',
      help: BREAK_GLASS_PURPOSE,
      detect: (facts) => facts.accounts.users.some((u) => u.gecos === COMMENT),
    }),
    ask.text({
      id: 'name',
      prompt: 'Name of the break-glass account',
      maxLength: NAME_MAX,
      limitSetBy: 'Linux',
      when: (answers) => answers.wanted === true,
      detect: (facts) => facts.accounts.users.find((u) => u.gecos === COMMENT)?.name ?? 'breakglass',
      check: async (value, _answers, ctx) => {
        const problem = adminNameProblem(value, parsePasswd((await ctx.files.read('/etc/passwd')) ?? ''));
        if (problem) return problem;
        // The admin may not exist yet (an answers file is checked before anything runs), so compare names too.
        const admin = ctx.answersOf?.(adminAccountStep).name;
        if (admin === value) return `${value} is the admin account (admin-account.name); the break-glass account must be a separate one, for the day the admin cannot log in`;
        // Never lock somebody's working account: a new or already-disabled one only.
        const state = parseShadow((await ctx.files.read('/etc/shadow')) ?? '').get(value);
        return state === 'set' ? `${value} is an account in use (it has a password); the break-glass account must be a separate, unused one` : undefined;
      },
    }),
  ],

  async probe(ctx) {
    return { accounts: await readAccounts(ctx.files), pveUsers: await listUsers(ctx.exec), acl: await listAcl(ctx.exec) };
  },

  requires: (node) => (node.proxmox ? undefined : 'needs a Proxmox VE node (pveum)'),

  plan(facts, answers) {
    if (!answers.wanted || answers.name === undefined) return [];
    const { name } = answers;
    const userid = `${name}@pam`;
    const user = facts.accounts.users.find((u) => u.name === name);
    const changes: Change[] = [];
    if (!user) {
      changes.push({
        kind: 'command',
        argv: ['useradd', '--create-home', '--shell', '/bin/bash', '--groups', 'sudo', '--comment', COMMENT, name],
        undo: ['userdel', '--remove', name],
        reason: 'the emergency account, with sudo for when it is enabled; useradd gives it no usable password',
      });
    } else {
      if (facts.accounts.passwords.get(name) === 'set' || facts.accounts.passwords.get(name) === 'empty') {
        changes.push({ kind: 'command', argv: ['usermod', '--lock', name], undo: ['usermod', '--unlock', name], reason: `${name} must stay disabled until the procedure is followed` });
      }
      if (!memberOf(facts.accounts, name, 'sudo')) {
        changes.push({ kind: 'command', argv: ['usermod', '--append', '--groups', 'sudo', name], undo: ['gpasswd', '--delete', name, 'sudo'], reason: 'sudo for when it is enabled' });
      }
    }
    const pveUser = facts.pveUsers.find((u) => u.userid === userid);
    if (!pveUser) {
      changes.push({
        kind: 'command',
        argv: ['pveum', 'user', 'add', userid, '--enable', '0', '--comment', COMMENT],
        undo: ['pveum', 'user', 'delete', userid],
        reason: 'its Proxmox user, switched off until the procedure enables it',
      });
    } else if (pveUser.enable !== 0) {
      changes.push({ kind: 'command', argv: ['pveum', 'user', 'modify', userid, '--enable', '0'], undo: ['pveum', 'user', 'modify', userid, '--enable', '1'], reason: `${userid} must stay disabled until needed` });
    }
    if (!rolesOn(facts.acl, userid, '/').includes('Administrator')) {
      changes.push({
        kind: 'command',
        argv: ['pveum', 'acl', 'modify', '/', '--users', userid, '--roles', 'Administrator'],
        undo: ['pveum', 'acl', 'delete', '/', '--users', userid, '--roles', 'Administrator'],
        reason: 'Administrator on /, effective only once the user is enabled',
      });
    }
    return changes;
  },

  document: (ctx, answers) => breakGlassDocument(ctx, answers.wanted === true && typeof answers.name === 'string' ? answers.name : undefined),

  async verify(ctx, answers) {
    if (!answers.wanted || answers.name === undefined) return [{ label: 'no break-glass account was asked for', ok: true }];
    const { name } = answers;
    const accounts = await readAccounts(ctx.files);
    const state = accounts.passwords.get(name);
    const home = accounts.users.find((u) => u.name === name)?.home;
    const keys = home ? await ctx.files.read(`${home}/.ssh/authorized_keys`) : null;
    const pveUser = (await listUsers(ctx.exec)).find((u) => u.userid === `${name}@pam`);
    return [
      { label: `${name} exists`, ok: !!home },
      { label: `${name} has no usable password`, ok: state === 'none' || state === 'locked', detail: `password: ${state ?? 'unknown'}` },
      { label: `${name} has no SSH key`, ok: !keys?.trim() },
      { label: `${name}@pam exists and is disabled`, ok: pveUser?.enable === 0 },
    ];
  },
};

/**
 * The break-glass part of the access-policy document: what the account is
 * for, whether the node still has it disabled, and the procedure to use it.
 */
export async function breakGlassDocument(ctx: StepContext, name: string | undefined): Promise<DocumentSection> {
  const heading = 'Break-glass account';
  if (!name) return { heading, blocks: [paragraph('No break-glass account was created.')] };
  const accounts = await readAccounts(ctx.files);
  const state = accounts.passwords.get(name);
  const pveUser = (await listUsers(ctx.exec)).find((u) => u.userid === `${name}@pam`);
  const linux = !accounts.users.some((u) => u.name === name)
    ? 'MISSING'
    : state === 'none' || state === 'locked'
      ? `disabled (password ${state})`
      : `ENABLED (password ${state ?? 'unknown'}): disable it again as the last step below says`;
  return {
    heading,
    blocks: [
      paragraph(BREAK_GLASS_PURPOSE),
      table(
        ['Account', 'State'],
        [
          [`${name} (Linux)`, linux],
          [`${name}@pam (Proxmox VE)`, !pveUser ? 'MISSING' : pveUser.enable === 0 ? 'disabled' : 'ENABLED: disable it again as the last step below says'],
        ],
      ),
      paragraph(`Account: ${code(name)} (Linux) and ${code(`${name}@pam`)} (Proxmox VE). To use it:`),
      numbered(breakGlassProcedure(name)),
    ],
    evidence: ['read /etc/passwd, /etc/group, /etc/shadow (password states only)', 'pveum user list --output-format json'],
  };
}
