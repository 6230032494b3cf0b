/**
 * Service accounts and API tokens for automation (seed 002: "Create API
 * tokens tied to RBAC accounts (not root)", "Always set expiration dates",
 * "--privsep 1", "Rotate tokens every 90-180 days; create the new token
 * before deleting the old one").
 *
 *   accounts  svc-NAME@pve, realm pve and no password: only its tokens can act for it
 *   tokens    privilege-separated (--privsep 1), with an expiry (required: 1 to 3650 days, 180 unless
 *             chosen), and an ACL of their own no wider than the account's (the same roles on the
 *             same path, granted to both: Proxmox gives a separated token the intersection)
 *   secret    from `pveum user token add --output-format json`, shown once in the wizard and, when the
 *             operator names a file, written there (mode 0600); never in the journal, a log, the
 *             document or a process list
 *   rotation  a token within 30 days of its expiry is given a new secret and expiry in place
 *             (`--regenerate`, pve-access-control 9.1+), else a new token is made before the old one
 *             is deleted
 *   never     a token for root@pam (refused as input; an existing one is drift)
 */
import type { Change, CommandWrite } from '../src/engine/change.ts';
import type { Check, QuestionContext, Step } from '../src/engine/step.ts';
import { ask } from '../src/engine/questions.ts';
import { expiryEpoch, grant, PveumScript } from '../src/pve/access-model.ts';
import { isValidAclPath, isValidTokenSubid, normalizeAclPath } from '../src/pve/names.ts';
import { isBuiltinRole } from '../src/pve/privileges.ts';
import { privilegeMap } from '../src/pve/permissions.ts';
import { findAclNode, newUser, parseUserCfg, type UserCfg } from '../src/pve/user-cfg.ts';
import type { PveMajor } from '../src/pve/privileges.ts';
import { bullets, code, paragraph } from '../src/report/section.ts';
import { accessFindings, isoDate, type FindingKind } from '../src/pve/access-audit.ts';
import { findingsCheck, SERVICE_ACCOUNT, USER_CFG } from './access-model.ts';

const TOKEN_CFG = '/etc/pve/priv/token.cfg';
const DAY = 86_400;
/** A token this close to its expiry is rotated, and `check` reports it. */
export const ROTATE_WITHIN_DAYS = 30;
export const DEFAULT_EXPIRY_DAYS = 180;
const MAX_EXPIRY_DAYS = 3650;
const ROOT_TOKEN = 'a token of root@pam has every privilege, is not limited by any ACL and leaves no named trail: make a service account (svc-NAME@pve) instead';

/** One token as declared: its account, name, grant, lifetime and where its secret may be written. */
export type DeclaredToken = {
  account: string;
  token: string;
  roles: string[];
  path: string;
  /** Days from when the token is made; or `expires`, a date. */
  expire_days?: number;
  /** The last day it works (YYYY-MM-DD, UTC). */
  expires?: string;
  comment?: string;
  save_to?: string;
};

export interface TokenFacts {
  major: PveMajor;
  cfg: UserCfg;
  userCfg: string;
  tokenCfg: string | null;
  now: number;
  /** `--regenerate` (pve-access-control 9.1+) rotates a secret in place, ACLs kept. */
  regenerate: boolean;
  /** Custom roles on the node (for the check of declared roles). */
  roles: Set<string>;
}

export type ApiTokensAnswers = {
  tokens?: DeclaredToken[];
  account?: string;
  token?: string;
  roles?: string[];
  path?: string;
  expire_days?: number;
  comment?: string;
  save_to?: string;
};

const FIELDS = ['account', 'token', 'roles', 'path', 'expire_days', 'expires', 'comment', 'save_to'];

function accountProblem(account: string): string | undefined {
  if (/^root@pam$/.test(account)) return ROOT_TOKEN;
  return SERVICE_ACCOUNT.test(account) ? undefined : 'wants a service account named svc-NAME@pve (realm pve, no password: only its tokens can act for it)';
}

function saveToProblem(path: string): string | undefined {
  if (!path.startsWith('/') || path.split('/').includes('..')) return 'wants an absolute path such as /root/svc-monitoring.token';
  if (path.startsWith('/etc/pve/')) return 'must not be under /etc/pve (it is shared with every node of the cluster)';
  return /[\u0000-\u001f\u007f]/.test(path) ? 'must be one line without control characters' : undefined;
}

/** Check a list of declared tokens (the answers file's `api-tokens.tokens`), naming each field. */
export function decodeTokens(raw: unknown, facts?: Pick<TokenFacts, 'roles' | 'now'>): { ok: true; value: DeclaredToken[] } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  if (!Array.isArray(raw) || !raw.length) return { ok: false, problems: ['wants a list of tokens, each with account, token, roles, path and expire_days'] };
  const out: DeclaredToken[] = [];
  const seen = new Set<string>();
  raw.forEach((t: unknown, i) => {
    const at = `[${i}]`;
    const bad = (field: string, what: string) => problems.push(`${at}.${field}: ${what}`);
    if (typeof t !== 'object' || t === null || Array.isArray(t)) return void problems.push(`${at}: wants a mapping with ${FIELDS.join(', ')}`);
    const e = t as Record<string, unknown>;
    for (const key of Object.keys(e)) if (!FIELDS.includes(key)) bad(/^[\w-]{1,40}$/.test(key) ? key : '(a key)', `not a field (fields: ${FIELDS.join(', ')})`);
    const account = typeof e.account === 'string' ? e.account : '';
    const accountBad = accountProblem(account);
    if (accountBad) bad('account', accountBad);
    const token = typeof e.token === 'string' ? e.token : '';
    if (!isValidTokenSubid(token)) bad('token', 'wants a token name: a letter, then letters, digits, \'.\', \'-\' or \'_\' (e.g. metrics)');
    if (seen.has(`${account}!${token}`)) bad('token', `${account}!${token} is declared twice`);
    seen.add(`${account}!${token}`);
    const roles = typeof e.roles === 'string' ? e.roles.split(/[\s,;]+/).filter(Boolean) : e.roles;
    if (!Array.isArray(roles) || !roles.length || !roles.every((r) => typeof r === 'string')) bad('roles', 'wants a list of roles, e.g. [PVEAuditor]');
    else for (const r of roles as string[]) if (!isBuiltinRole(r) && facts && !facts.roles.has(r)) bad('roles', `role '${r}' is neither built in nor on this node`);
    const path = typeof e.path === 'string' ? normalizeAclPath(e.path) : e.path === undefined ? '/' : null;
    if (!path || !isValidAclPath(path)) bad('path', `${typeof e.path === 'string' ? `'${e.path}' ` : ''}is not a path Proxmox grants on (e.g. /, /vms, /storage/local)`);
    const days = e.expire_days ?? (e.expires === undefined ? DEFAULT_EXPIRY_DAYS : undefined);
    if (e.expire_days !== undefined && e.expires !== undefined) bad('expires', 'give either expire_days or expires, not both');
    if (days === 0 || days === 'never' || days === null || e.expires === 'never' || e.expires === 0) bad(e.expires !== undefined ? 'expires' : 'expire_days', `a token must expire: Proxmox's 0 means never, which pve-baseline refuses; give 1 to ${MAX_EXPIRY_DAYS} days`);
    else if (days !== undefined && (typeof days !== 'number' || !Number.isInteger(days) || days < 1)) bad('expire_days', `${String(days)} is not a number of days in the future; give 1 to ${MAX_EXPIRY_DAYS}`);
    else if (typeof days === 'number' && days > MAX_EXPIRY_DAYS) bad('expire_days', `at most ${MAX_EXPIRY_DAYS} days (seed 002: rotate every 90 to 180 days)`);
    if (e.expires !== undefined && e.expires !== 'never' && e.expires !== 0) {
      const when = typeof e.expires === 'string' ? expiryEpoch(e.expires) : undefined;
      const now = facts?.now ?? Math.floor(Date.now() / 1000);
      if (when === undefined) bad('expires', 'wants a date as YYYY-MM-DD (the last day the token works, UTC)');
      else if (when <= now) bad('expires', `${String(e.expires)} is in the past; a token's expiry must be a later date`);
      else if (when > now + MAX_EXPIRY_DAYS * DAY) bad('expires', `at most ${MAX_EXPIRY_DAYS} days ahead (seed 002: rotate every 90 to 180 days)`);
    }
    const comment = e.comment === undefined ? undefined : String(e.comment);
    if (comment !== undefined && (comment.length > 200 || /[\u0000-\u001f\u007f]/.test(comment))) bad('comment', 'wants one line of at most 200 characters');
    const saveTo = e.save_to === undefined ? undefined : String(e.save_to);
    const saveBad = saveTo !== undefined ? saveToProblem(saveTo) : undefined;
    if (saveBad) bad('save_to', saveBad);
    if (!problems.some((p) => p.startsWith(`${at}`))) {
      out.push({
        account,
        token,
        roles: [...new Set(roles as string[])].sort(),
        path: path!,
        ...(typeof days === 'number' ? { expire_days: days } : { expires: String(e.expires) }),
        ...(comment ? { comment } : {}),
        ...(saveTo ? { save_to: saveTo } : {}),
      });
    }
  });
  return problems.length ? { ok: false, problems } : { ok: true, value: out };
}

/** The tokens the answers declare: the file's list, or the one the wizard asked about. */
export function tokensOf(answers: ApiTokensAnswers): DeclaredToken[] {
  if (answers.tokens) return answers.tokens;
  if (!answers.account || !answers.token) return [];
  return [
    {
      account: answers.account,
      token: answers.token,
      roles: answers.roles ?? ['PVEAuditor'],
      path: answers.path ?? '/',
      expire_days: answers.expire_days ?? DEFAULT_EXPIRY_DAYS,
      ...(answers.comment ? { comment: answers.comment } : {}),
      ...(answers.save_to ? { save_to: answers.save_to } : {}),
    },
  ];
}

const daysLeft = (expire: number, now: number) => Math.floor((expire - now) / DAY);
const wizardOnly = (answers: Record<string, unknown>) => answers.tokens === undefined;

export const apiTokensStep: Step<TokenFacts, ApiTokensAnswers> = {
  id: 'api-tokens',
  title: 'Service accounts and API tokens',
  summary: 'Automation gets its own account (svc-NAME@pve) and an expiring, privilege-separated token with only the grant it needs; never a token for root.',
  scope: 'datacenter',
  risk: 'safe',

  questions: [
    ask.document<TokenFacts, 'tokens', DeclaredToken[]>({
      id: 'tokens',
      prompt: 'The service accounts\' tokens',
      decode: (raw, ctx: QuestionContext) => decodeTokens(raw, ctx.facts as TokenFacts | undefined),
    }),
    ask.text({
      id: 'account',
      prompt: 'Service account',
      help: 'svc-NAME@pve: realm pve, no password, so only its tokens can act for it. A token for root@pam is never made.',
      maxLength: 64,
      detect: () => 'svc-monitoring@pve',
      when: wizardOnly,
      check: (value) => accountProblem(value),
    }),
    ask.text({
      id: 'token',
      prompt: 'Token name',
      help: 'Names what uses it (e.g. metrics, backup-check); the token id is ACCOUNT!NAME.',
      maxLength: 40,
      detect: () => 'metrics',
      when: wizardOnly,
      check: (value) => (isValidTokenSubid(value) ? undefined : 'wants a letter, then letters, digits, \'.\', \'-\' or \'_\''),
    }),
    ask.words({
      id: 'roles',
      prompt: 'Roles for the token',
      help: 'PVEAuditor reads everything and changes nothing (monitoring). The same roles go to the account, so the token\'s grant is never wider than its account\'s.',
      what: 'a role name such as PVEAuditor',
      pattern: /^[A-Za-z0-9.\-_]+$/,
      maxWordLength: 64,
      maxWords: 10,
      detect: () => ['PVEAuditor'],
      when: wizardOnly,
      check: (roles, _answers, ctx) => {
        const facts = ctx.facts as TokenFacts | undefined;
        const unknown = roles.filter((r) => !isBuiltinRole(r) && facts && !facts.roles.has(r));
        return unknown.length ? `no role ${unknown.join(', ')} on this node (built-in roles start with PVE; custom ones come from the access model)` : undefined;
      },
    }),
    ask.text({
      id: 'path',
      prompt: 'Path the roles apply on',
      help: '/ is everything; /vms, /storage/local or /pool/NAME narrow it.',
      maxLength: 128,
      detect: () => '/',
      when: wizardOnly,
      check: (value) => {
        const p = normalizeAclPath(value);
        return p && isValidAclPath(p) ? undefined : 'wants a path Proxmox grants on, e.g. /, /vms, /storage/local, /pool/NAME';
      },
    }),
    ask.integer({ id: 'expire_days', prompt: 'Days until the token expires', min: 1, max: MAX_EXPIRY_DAYS, unit: 'days', detect: () => DEFAULT_EXPIRY_DAYS, when: wizardOnly }),
    ask.text({ id: 'comment', prompt: 'What uses it (comment, optional)', maxLength: 200, optional: true, when: wizardOnly }),
    ask.text({
      id: 'save_to',
      prompt: 'Also write the secret to a file (optional, mode 0600)',
      help: 'The secret is shown once. Name a file to keep it for the service that uses it; leave empty to only see it.',
      maxLength: 256,
      optional: true,
      when: wizardOnly,
      check: (value) => saveToProblem(value),
    }),
  ],

  requires: (node) => (node.proxmox ? undefined : 'needs a Proxmox VE node (pveum)'),

  async probe(ctx) {
    const major: PveMajor = (ctx.node.proxmox?.major ?? 9) >= 9 ? 9 : 8;
    const userCfg = (await ctx.files.read(USER_CFG)) ?? '';
    const cfg = parseUserCfg(userCfg, { major }).cfg;
    return {
      major,
      cfg,
      userCfg,
      tokenCfg: await ctx.files.read(TOKEN_CFG),
      now: Math.floor(Date.now() / 1000),
      regenerate: await canRegenerate(ctx.exec, ctx.node.proxmox?.version),
      roles: new Set(cfg.roles.keys()),
    };
  },

  plan(facts, answers) {
    const script = new PveumScript(facts.cfg, facts.userCfg);
    const secretWrites = new Set<number>();
    for (const t of tokensOf(answers)) {
      const id = `${t.account}!${t.token}`;
      const expire = t.expires ? expiryEpoch(t.expires)! : facts.now + (t.expire_days ?? DEFAULT_EXPIRY_DAYS) * DAY;
      const lifetime = t.expires ? `until ${t.expires}` : `${t.expire_days ?? DEFAULT_EXPIRY_DAYS} days`;
      if (!script.cfg.users.has(t.account)) {
        script.run(['user', 'add', t.account, '--comment', `service account${t.comment ? `: ${t.comment}` : ''}`], `${t.account}: a service account (realm pve, no password: only its tokens can act for it)`, (c) => {
          const u = newUser(1);
          u.comment = `service account${t.comment ? `: ${t.comment}` : ''}`;
          c.users.set(t.account, u);
        });
      }
      const held = (kind: 'users' | 'tokens', who: string) => t.roles.every((r) => aclHolds(script.cfg, t.path, kind, who, r));
      if (!held('users', t.account)) {
        script.run(['acl', 'modify', t.path, '--roles', t.roles.join(','), '--users', t.account, '--propagate', '1'], `${t.account} gets ${t.roles.join(', ')} on ${t.path}: its token can never have more`, (c) =>
          grant(c, t.path, 'users', t.account, t.roles, 1),
        );
      }
      const existing = script.cfg.users.get(t.account)?.tokens.get(t.token);
      const saveLine = { line: `PVEAPIToken=${id}={value}` };
      if (!existing) {
        secretWrites.add(script.commands.length);
        script.run(
          ['user', 'token', 'add', t.account, t.token, '--privsep', '1', '--expire', String(expire), ...(t.comment ? ['--comment', t.comment] : []), '--output-format', 'json'],
          `${id}: privilege-separated, expires ${isoDate(expire)} (${lifetime})`,
          (c) => void c.users.get(t.account)!.tokens.set(t.token, { expire, privsep: 1, ...(t.comment ? { comment: t.comment } : {}) }),
          { reveal: { field: 'value', title: `The secret of ${id}`, advice: `Shown once: store it where the service reads it; requests send the header Authorization: PVEAPIToken=${id}=SECRET`, ...(t.save_to ? { saveTo: { path: t.save_to, ...saveLine } } : {}) } },
        );
      } else {
        const left = existing.expire ? daysLeft(existing.expire, facts.now) : Infinity;
        const fix: string[] = [];
        if (!existing.privsep) fix.push('--privsep', '1');
        if (!existing.expire) fix.push('--expire', String(expire));
        if (left <= ROTATE_WITHIN_DAYS && facts.regenerate) {
          secretWrites.add(script.commands.length);
          script.run(
            ['user', 'token', 'modify', t.account, t.token, '--regenerate', '1', '--expire', String(expire), ...(existing.privsep ? [] : ['--privsep', '1']), '--output-format', 'json'],
            `${id} ${left < 0 ? 'expired' : `expires in ${left} days`}: a new secret and a new expiry (${isoDate(expire)}), its grants kept; the old secret stops working now`,
            (c) => Object.assign(c.users.get(t.account)!.tokens.get(t.token)!, { expire, privsep: 1 }),
            { reveal: { field: 'value', title: `The new secret of ${id}`, advice: 'Shown once: replace the old secret where the service reads it (the old one no longer works)', ...(t.save_to ? { saveTo: { path: t.save_to, ...saveLine } } : {}) } },
          );
        } else if (left <= ROTATE_WITHIN_DAYS) {
          // Without --regenerate: a successor first, so the service can switch before the old one goes.
          const next = `${t.token.slice(0, 30)}-${isoDate(facts.now).replace(/-/g, '')}`;
          secretWrites.add(script.commands.length);
          script.run(
            ['user', 'token', 'add', t.account, next, '--privsep', '1', '--expire', String(expire), '--output-format', 'json'],
            `${id} ${left < 0 ? 'expired' : `expires in ${left} days`}: its successor ${t.account}!${next} first (this Proxmox VE cannot regenerate a secret); the old token runs out on its own date`,
            (c) => void c.users.get(t.account)!.tokens.set(next, { expire, privsep: 1 }),
            { reveal: { field: 'value', title: `The secret of ${t.account}!${next}`, advice: `Shown once: switch the service to ${t.account}!${next} before ${id} expires`, ...(t.save_to ? { saveTo: { path: t.save_to, line: `PVEAPIToken=${t.account}!${next}={value}` } } : {}) } },
          );
          script.run(['acl', 'modify', t.path, '--roles', t.roles.join(','), '--tokens', `${t.account}!${next}`, '--propagate', '1'], `${t.account}!${next} gets the grant of ${id}`, (c) =>
            grant(c, t.path, 'tokens', `${t.account}!${next}`, t.roles, 1),
          );
        } else if (fix.length) {
          script.run(['user', 'token', 'modify', t.account, t.token, ...fix], `${id}: ${!existing.privsep ? 'privilege separation on (it had its account\'s full rights)' : ''}${!existing.privsep && !existing.expire ? '; ' : ''}${!existing.expire ? `an expiry (${isoDate(expire)}), it had none` : ''}`, (c) =>
            Object.assign(c.users.get(t.account)!.tokens.get(t.token)!, { privsep: 1, ...(existing.expire ? {} : { expire }) }),
          );
        }
      }
      if (!held('tokens', id)) {
        script.run(['acl', 'modify', t.path, '--roles', t.roles.join(','), '--tokens', id, '--propagate', '1'], `${id} gets ${t.roles.join(', ')} on ${t.path} (a separated token without its own grant can do nothing)`, (c) =>
          grant(c, t.path, 'tokens', id, t.roles, 1),
        );
      }
    }
    return script.commands.map((command, i): Change => {
      const writes: CommandWrite[] = [{ path: USER_CFG, before: command.before, after: command.after }];
      if (secretWrites.has(i)) writes.push({ path: TOKEN_CFG, before: facts.tokenCfg, unshown: 'it holds every token\'s secret' });
      const tokenAdd = command.argv[2] === 'token' && command.argv[3] === 'add';
      return {
        kind: 'command',
        argv: command.argv,
        writes,
        ...(tokenAdd ? { undo: ['pveum', 'user', 'token', 'delete', command.argv[4]!, command.argv[5]!] } : {}),
        ...(command.reveal ? { reveal: command.reveal } : {}),
        reason: command.reason,
      };
    });
  },

  async verify(ctx, answers) {
    const major: PveMajor = (ctx.node.proxmox?.major ?? 9) >= 9 ? 9 : 8;
    const cfg = parseUserCfg((await ctx.files.read(USER_CFG)) ?? '', { major }).cfg;
    const now = Math.floor(Date.now() / 1000);
    const checks: Check[] = [];
    for (const t of tokensOf(answers)) {
      const id = `${t.account}!${t.token}`;
      const token = currentToken(cfg, t);
      if (!token) {
        checks.push({ label: `API token ${id} exists`, ok: false, detail: `no token ${t.token} for ${t.account}` });
        continue;
      }
      const left = token.info.expire ? daysLeft(token.info.expire, now) : undefined;
      checks.push({ label: `${token.id} is privilege-separated`, ok: token.info.privsep === 1, ...(token.info.privsep ? {} : { detail: 'privsep 0: it has its account\'s full rights' }) });
      checks.push({
        label: `${token.id} expires, and not within ${ROTATE_WITHIN_DAYS} days`,
        ok: left !== undefined && left > ROTATE_WITHIN_DAYS,
        detail: left === undefined ? 'it never expires' : left < 0 ? `expired on ${isoDate(token.info.expire)}` : `expires ${isoDate(token.info.expire)} (${left} days left)${left <= ROTATE_WITHIN_DAYS ? ': run this step again to rotate it' : ''}`,
      });
      const tokenPrivs = [...privilegeMap(cfg, token.id, t.path).keys()].sort();
      const accountPrivs = new Set(privilegeMap(cfg, t.account, t.path).keys());
      checks.push({
        label: `${token.id} may do on ${t.path} what ${t.roles.join(', ')} grants, and nothing its account may not`,
        ok: tokenPrivs.length > 0 && tokenPrivs.every((p) => accountPrivs.has(p)),
        detail: tokenPrivs.length ? tokenPrivs.join(', ') : 'nothing: it has no grant of its own',
      });
    }
    // Every token of the node, declared here or not: the drift `check` reports.
    const findings = accessFindings(cfg, { now, declaredAdmins: [], expiringDays: ROTATE_WITHIN_DAYS });
    const of = (...kinds: FindingKind[]) => findings.filter((f) => kinds.includes(f.kind));
    checks.push(
      findingsCheck('No API token for root@pam', of('root-token')),
      findingsCheck(`Every token expires, and none within ${ROTATE_WITHIN_DAYS} days`, of('token-no-expiry', 'token-expired', 'token-expiring')),
      findingsCheck('Every token is privilege-separated', of('token-not-separated')),
    );
    return checks;
  },

  async document(ctx, answers) {
    const declared = tokensOf(answers as ApiTokensAnswers);
    return {
      heading: 'Service accounts and API tokens',
      blocks: [
        paragraph(
          `Automation uses service accounts (${code('svc-NAME@pve')}, no password) and privilege-separated tokens that expire; a token's grant is never wider than its account's, and root@pam has no token. Within ${ROTATE_WITHIN_DAYS} days of a token's expiry, running this step again gives it a new secret and expiry, its grants kept. Every token, with its owner, expiry and days left, is in the API tokens table above.`,
        ),
        ...(declared.length
          ? [bullets(declared.map((t) => `${code(`${t.account}!${t.token}`)}: ${t.roles.join(', ')} on ${code(t.path)}${t.comment ? ` (${t.comment})` : ''}`))]
          : [paragraph('pve-baseline has made no token on this node.')]),
      ],
      evidence: [`read ${USER_CFG} (token secrets are in ${TOKEN_CFG}, which is never read)`],
    };
  },
};

function aclHolds(cfg: UserCfg, path: string, kind: 'users' | 'tokens', id: string, role: string): boolean {
  return findAclNode(cfg, path, false)?.[kind].get(id)?.get(role) === 1;
}

/** The declared token, or its newest successor made by a rotation without --regenerate (NAME-YYYYMMDD). */
function currentToken(cfg: UserCfg, t: DeclaredToken): { id: string; info: { expire: number; privsep: 0 | 1 } } | undefined {
  const tokens = cfg.users.get(t.account)?.tokens;
  if (!tokens) return undefined;
  const family = [...tokens].filter(([sub]) => sub === t.token || new RegExp(`^${t.token.slice(0, 30).replace(/[.]/g, '\\.')}-\\d{8}$`).test(sub)).sort(([a], [b]) => (a < b ? -1 : 1));
  const newest = family.filter(([sub]) => sub !== t.token).pop() ?? family.find(([sub]) => sub === t.token);
  return newest ? { id: `${t.account}!${newest[0]}`, info: newest[1] } : undefined;
}

/**
 * Whether `pveum user token modify --regenerate` exists: pve-access-control
 * 9.1.0 added it. The package's version when dpkg knows it, else the
 * manager's (9.2 ships it).
 */
async function canRegenerate(exec: import('../src/system/exec.ts').Exec, managerVersion: string | undefined): Promise<boolean> {
  const pkg = await exec.run(['dpkg-query', '-W', '-f=${Version}', 'libpve-access-control']).catch(() => null);
  const version = pkg?.exitCode === 0 && pkg.stdout.trim() ? pkg.stdout.trim() : undefined;
  const [major, minor] = (version ?? managerVersion ?? '0.0').split(/[.-]/).map(Number);
  const floor = version ? [9, 1] : [9, 2];
  return (major ?? 0) > floor[0]! || ((major ?? 0) === floor[0] && (minor ?? 0) >= floor[1]!);
}
