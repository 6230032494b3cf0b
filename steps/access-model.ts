/**
 * Least privilege as code (seeds 002-004): named accounts with the smallest
 * role that does the job, groups rather than per-user grants, pools that
 * scope a team to its guests. The model is a template the wizard fills in,
 * or the `access` of an answers file declaring the whole of it.
 *
 *   plan      the difference from the node's user.cfg as pveum commands, each with its reason and the
 *             user.cfg it leaves (a diff); never removes what is not declared unless `prune`, and
 *             never touches root@pam, the admin account or the service accounts (svc-*@pve)
 *   preview   what each affected user may do before and after, on the paths that matter
 *   undo      user.cfg (and, when a user is deleted, the realm's passwords, tokens and second factors)
 *             put back byte for byte from the backups
 *   verify    everything declared is on the node as declared; no one holds Administrator who is not
 *             a declared admin; no disabled account keeps privileges
 */
import type { Change, CommandWrite } from '../src/engine/change.ts';
import type { Check, QuestionContext, Step, StepContext } from '../src/engine/step.ts';
import { ask } from '../src/engine/questions.ts';
import { decodeAccessModel, modelDrift, planAccessModel, privilegeChangeLines, privilegeChanges, type AccessModel, type NodeFacts } from '../src/pve/access-model.ts';
import { ACCESS_TEMPLATES, TEMPLATE_IDS, type AccessTemplateId, type TemplateInput } from '../src/pve/access-templates.ts';
import { guestIds, STORAGE_CFG, storageIds } from '../src/pve/guests.ts';
import { checkPoolid, checkUserid } from '../src/pve/names.ts';
import { parseUserCfg } from '../src/pve/user-cfg.ts';
import type { PveMajor } from '../src/pve/privileges.ts';
import { bullets, code, paragraph, type DocumentSection } from '../src/report/section.ts';
import { accessFindings, type Finding } from '../src/pve/access-audit.ts';
import { adminAccountStep } from './admin-account.ts';
import { breakGlassStep } from './break-glass.ts';

export const USER_CFG = '/etc/pve/user.cfg';
/** Deleting a user (prune) also writes these: its realm password, its tokens' secrets, its second factors. */
const USER_SECRETS = ['/etc/pve/priv/shadow.cfg', '/etc/pve/priv/token.cfg', '/etc/pve/priv/tfa.cfg'] as const;
/** Service accounts belong to the API tokens step. */
export const SERVICE_ACCOUNT = /^svc-[A-Za-z0-9][A-Za-z0-9._-]{0,40}@pve$/;

export interface AccessFacts extends NodeFacts {
  userCfg: string;
  /** The files a user's deletion writes, as they are now (never shown). */
  secrets: Record<(typeof USER_SECRETS)[number], string | null>;
  /** Ids the model never removes: the admin account; service accounts are matched by name. */
  protect: Set<string>;
}

export type AccessModelAnswers = {
  access?: AccessModel;
  template?: AccessTemplateId;
  external_vms?: string[];
  internal_vms?: string[];
  pool?: string;
  vms?: string[];
  members?: string[];
  prune?: boolean;
};

/** Whether the chosen template needs this input (and no whole model was given). */
const asks = (answers: Record<string, unknown>, input: keyof TemplateInput): boolean =>
  answers.access === undefined && typeof answers.template === 'string' && (ACCESS_TEMPLATES[answers.template as AccessTemplateId]?.asks.includes(input) ?? false);

const nodeFacts = (ctx: QuestionContext): NodeFacts | undefined => ctx.facts as AccessFacts | undefined;

/** Guest ids typed in the wizard, checked against the node's guests when it has been probed. */
function guestList<K extends 'external_vms' | 'internal_vms' | 'vms'>(id: K, prompt: string, input: keyof TemplateInput) {
  return ask.words<AccessFacts, K>({
    id,
    prompt,
    help: 'Guest ids separated by spaces, e.g. 100 101. Each guest belongs to one pool.',
    what: 'a guest id (a number from 100 up)',
    pattern: /^[1-9]\d{2,8}$/,
    maxWordLength: 9,
    maxWords: 200,
    optional: true,
    when: (answers) => asks(answers, input),
    check: (ids, _answers, ctx) => {
      const node = nodeFacts(ctx);
      const missing = node ? ids.filter((v) => !node.vmids.has(v)) : [];
      return missing.length ? `no guest ${missing.join(', ')} on this node (guests here: ${[...node!.vmids].sort((a, b) => Number(a) - Number(b)).join(', ') || 'none'})` : undefined;
    },
  });
}

/** The model the answers declare: the file's own, or the chosen template filled in. */
export function modelOf(answers: AccessModelAnswers, major: PveMajor): AccessModel | undefined {
  if (answers.access) return answers.access;
  if (!answers.template) return undefined;
  return ACCESS_TEMPLATES[answers.template].build(
    {
      externalVms: answers.external_vms ?? [],
      internalVms: answers.internal_vms ?? [],
      members: answers.members ?? [],
      pool: answers.pool ?? 'team',
      vms: answers.vms ?? [],
    },
    major,
  );
}

/** Who may hold Administrator besides root@pam: the admin account, the model's `admins`; and the break-glass account, disabled on purpose. */
function adminsOf(ctx: StepContext, model: AccessModel): { declaredAdmins: string[]; breakGlass: string[] } {
  const admin = ctx.answersOf(adminAccountStep).name;
  const glass = ctx.answersOf(breakGlassStep);
  return { declaredAdmins: [...(admin ? [`${admin}@pam`] : []), ...(model.admins ?? [])], breakGlass: glass.wanted && glass.name ? [`${glass.name}@pam`] : [] };
}

/** A check that passes without findings and names each one otherwise (in plain text: the messages quote names for markdown). */
export function findingsCheck(label: string, findings: readonly Finding[]): Check {
  return { label, ok: findings.length === 0, ...(findings.length ? { detail: findings.map((f) => f.message.replace(/`/g, '')).join('; ') } : {}) };
}

export const accessModelStep: Step<AccessFacts, AccessModelAnswers> = {
  id: 'access-model',
  title: 'Roles, groups and pools',
  summary: 'Named accounts with the smallest role that does the job, granted to groups and scoped by pools, planned as a diff against user.cfg.',
  scope: 'datacenter',
  risk: 'disruptive',

  questions: [
    ask.document<AccessFacts, 'access', AccessModel>({
      id: 'access',
      prompt: 'The whole access model (roles, groups, users, pools, acl, admins)',
      decode: (raw, ctx) => decodeAccessModel(raw, nodeFacts(ctx)),
    }),
    ask.select({
      id: 'template',
      prompt: 'Which access model?',
      help: 'Each one makes named accounts, puts them in a group and grants the group the smallest role on the smallest path; nothing that exists is removed. The plan shows every pveum command and who may do what before and after.',
      choices: TEMPLATE_IDS.map((id) => ({ value: id, label: ACCESS_TEMPLATES[id].label, hint: ACCESS_TEMPLATES[id].hint })),
      when: (answers) => answers.access === undefined,
    }),
    guestList('external_vms', 'Guests of the external web servers (pool ExtWebSer)', 'externalVms'),
    guestList('internal_vms', 'Guests of the internal web servers (pool IntWebSer)', 'internalVms'),
    ask.text({
      id: 'pool',
      prompt: 'Name of the team\'s pool',
      help: 'A permission on /pool/NAME reaches the guests and storages in it.',
      maxLength: 64,
      detect: () => 'team',
      when: (answers) => asks(answers, 'pool'),
      check: (value) => checkPoolid(value) ?? (/^[A-Za-z]/.test(value) ? undefined : 'a pool name must start with a letter'),
    }),
    guestList('vms', 'Guests in the team\'s pool', 'vms'),
    ask.words({
      id: 'members',
      prompt: 'Who is in it (user ids)',
      help: 'NAME@pve accounts are created without a password (each sets theirs with pveum passwd); NAME@pam ones log in with their Linux password.',
      what: 'a user id such as betty@pve or carol@pam',
      pattern: /^[^\s:@/]{1,60}@(pve|pam)$/,
      maxWordLength: 64,
      maxWords: 50,
      when: (answers) => asks(answers, 'members'),
      check: (ids) => {
        const bad = ids.find((u) => u === 'root@pam' || checkUserid(u) !== null);
        return bad ? `${bad}: ${bad === 'root@pam' ? 'root@pam is never managed by pve-baseline' : 'not a user id'}` : undefined;
      },
    }),
    ask.yesNo({ id: 'prune', prompt: 'Remove users, groups, pools, roles and grants the model does not declare', fileOnly: true }),
  ],

  requires: (node) => (node.proxmox ? undefined : 'needs a Proxmox VE node (pveum)'),

  async probe(ctx) {
    const major: PveMajor = (ctx.node.proxmox?.major ?? 9) >= 9 ? 9 : 8;
    const userCfg = (await ctx.files.read(USER_CFG)) ?? '';
    const admin = ctx.answersOf(adminAccountStep).name;
    const secrets = {} as AccessFacts['secrets'];
    for (const path of USER_SECRETS) secrets[path] = await ctx.files.read(path);
    return {
      major,
      userCfg,
      cfg: parseUserCfg(userCfg, { major }).cfg,
      vmids: await guestIds(ctx.files),
      storages: storageIds((await ctx.files.read(STORAGE_CFG)) ?? ''),
      now: Math.floor(Date.now() / 1000),
      secrets,
      protect: new Set(admin ? [`${admin}@pam`] : []),
    };
  },

  plan(facts, answers) {
    const model = modelOf(answers, facts.major);
    if (!model) return [];
    // A template's names are checked here with the node's facts, as a file's are by its codec.
    const checked = decodeAccessModel(model, facts);
    if (!checked.ok) throw new Error(`the ${answers.template ?? 'declared'} model does not fit this node: ${checked.problems.join('; ')}`);
    const protect = new Set([...facts.protect, ...[...facts.cfg.users.keys()].filter((id) => SERVICE_ACCOUNT.test(id))]);
    const commands = planAccessModel(facts.cfg, checked.value, { prune: answers.prune === true, protect, text: facts.userCfg });
    return commands.map((command, i): Change => {
      const writes: CommandWrite[] = [{ path: USER_CFG, before: command.before, after: command.after }];
      // The first deletion writes the secret files; backed up then, they come back whole on undo.
      if (command.deletesUser && commands.findIndex((c) => c.deletesUser) === i) {
        for (const path of USER_SECRETS) writes.push({ path, before: facts.secrets[path], unshown: 'it holds passwords, token secrets or second factors' });
      }
      return { kind: 'command', argv: command.argv, writes, reason: command.reason };
    });
  },

  preview(facts, answers, changes) {
    const last = [...changes].reverse().find((c) => c.kind === 'command' && c.writes?.[0]?.path === USER_CFG);
    const after = last?.kind === 'command' ? last.writes![0]!.after : undefined;
    if (typeof after !== 'string') return [];
    const lines = privilegeChangeLines(privilegeChanges(facts.cfg, parseUserCfg(after, { major: facts.major }).cfg));
    const model = modelOf(answers, facts.major);
    const newPveUsers = Object.keys(model?.users ?? {}).filter((u) => u.endsWith('@pve') && !facts.cfg.users.has(u) && !SERVICE_ACCOUNT.test(u));
    if (newPveUsers.length) lines.push(`New accounts of realm pve have no password: each sets one with pveum passwd (${newPveUsers.join(', ')}).`);
    return lines;
  },

  async verify(ctx, answers) {
    const major: PveMajor = (ctx.node.proxmox?.major ?? 9) >= 9 ? 9 : 8;
    const cfg = parseUserCfg((await ctx.files.read(USER_CFG)) ?? '', { major }).cfg;
    const model = modelOf(answers, major);
    if (!model) return [{ label: 'An access model is declared', ok: false, detail: 'choose a template or give access-model.access in an answers file' }];
    const drift = modelDrift(cfg, model);
    const declared = [
      ...Object.keys(model.roles ?? {}).map((r) => `role ${r}`),
      ...Object.keys(model.groups ?? {}).map((g) => `group ${g}`),
      ...Object.keys(model.pools ?? {}).map((p) => `pool ${p}`),
      ...Object.keys(model.users ?? {}),
    ];
    const findings = accessFindings(cfg, { now: Math.floor(Date.now() / 1000), ...adminsOf(ctx, model) }).filter((f) => f.kind === 'unexpected-administrator' || f.kind === 'disabled-privileged');
    const checks: Check[] = [
      {
        label: 'The declared roles, groups, pools, users and grants are on the node',
        ok: drift.length === 0,
        detail: drift.length ? drift.join('; ') : `${declared.join(', ') || 'nothing but grants'}; ${(model.acl ?? []).length} grant(s)`,
      },
      findingsCheck('Administrator only for the declared admins', findings.filter((f) => f.kind === 'unexpected-administrator')),
      findingsCheck('No disabled or expired account keeps privileges', findings.filter((f) => f.kind === 'disabled-privileged')),
    ];
    return checks;
  },

  async document(ctx, answers) {
    const heading = 'The declared access model';
    const major: PveMajor = (ctx.node.proxmox?.major ?? 9) >= 9 ? 9 : 8;
    const model = answers.access !== undefined || answers.template !== undefined ? modelOf(answers as AccessModelAnswers, major) : undefined;
    if (!model) return { heading, blocks: [paragraph('pve-baseline has not applied an access model on this node: every account\'s grants are as the administrators set them by hand.')] };
    const cfg = parseUserCfg((await ctx.files.read(USER_CFG)) ?? '', { major }).cfg;
    const drift = modelDrift(cfg, model);
    const source = answers.access !== undefined ? 'declared in an answers file' : `the template ${code(ACCESS_TEMPLATES[answers.template!].label)}: ${ACCESS_TEMPLATES[answers.template!].description}`;
    return {
      heading,
      blocks: [
        paragraph(`The access model is ${source}. Permissions go to groups; pools scope a team to its guests; root@pam is kept for provisioning and emergencies.`),
        bullets([
          ...Object.entries(model.roles ?? {}).map(([r, p]) => `custom role ${code(r)}: ${p.join(', ')}`),
          ...Object.entries(model.groups ?? {}).map(([g, d]) => `group ${code(g)}: ${(d.members ?? []).join(', ') || 'no members'}`),
          ...Object.entries(model.pools ?? {}).map(([p, d]) => `pool ${code(p)}: guests ${(d.vms ?? []).join(', ') || 'none'}${d.storage?.length ? `; storage ${d.storage.join(', ')}` : ''}`),
          ...(model.acl ?? []).map((e) => `${[...(e.groups ?? []).map((g) => `@${g}`), ...(e.users ?? [])].join(', ')}: ${e.roles.join(', ')} on ${code(e.path)}${e.propagate === false ? ' (this path only)' : ''}`),
        ]),
        paragraph(drift.length ? `Drift from the model: ${drift.join('; ')}.` : 'The node holds the model as declared.'),
      ],
      evidence: [`read ${USER_CFG}`],
    };
  },
};

