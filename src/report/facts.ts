/**
 * What the access-policy document says, read from the node itself (never
 * from the answers), so it stays true after later changes and can be
 * regenerated at any time. Nothing secret is collected: password states,
 * never hashes; token ids, never values.
 *
 * The report's own facts are the node, its accounts, the access matrix, the
 * tokens, groups, pools and roles, the access findings (src/pve/access-audit.ts)
 * and the change log; every other part comes from the steps' own `document`
 * hooks, in catalogue order, so the report names no step but one: who counts
 * as a declared admin is an answer, read from the journal by
 * `declaredAdminsFrom` and `breakGlassFrom` (the only answers read here).
 */
import type { AccessProofRecord, StepRecord } from '../engine/journal.ts';
import { keptAnswers, type AnyStep, type Scope, type StepContext } from '../engine/step.ts';
import { DATACENTER_RECORD, nodeName, readDatacenterRecord } from '../engine/datacenter.ts';
import type { DocumentSection } from './section.ts';
import { memberOf, readAccounts, type PasswordState } from '../system/accounts.ts';
import type { NodeInfo } from '../system/detect.ts';
import type { Exec } from '../system/exec.ts';
import type { Files } from '../system/files.ts';
import { accessMatrix, type AccessMatrix } from '../pve/permissions.ts';
import { parseUserCfg } from '../pve/user-cfg.ts';
import { parseStorage } from '../pve/guests.ts';

/** The document's storage table reads storage.cfg with the one parser the steps use too. */
export { parseStorage };
import { accessFindings, accessSummary, privilegesByPath, tokenFacts, type AccessSummary, type Finding, type PathPrivileges, type TokenFact } from '../pve/access-audit.ts';

export interface PolicyFacts {
  node: {
    hostname: string;
    proxmox: string | null;
    debian: string | null;
    addresses: string[];
    bridges: string[];
    storage: { id: string; type: string; content: string }[];
  };
  /** Linux accounts that can log in (a real shell) or hold sudo. */
  linuxAdmins: { name: string; uid: number; shell: string; sudo: boolean; password: PasswordState | 'unknown' }[];
  pveUsers: { userid: string; realm: string; enabled: boolean; expire: number; groups: string[]; tfa: boolean; comment: string }[];
  /** Every API token; the fields after `comment` come from access-audit.ts `tokenFacts` (absent: not known). */
  tokens: ({ id: string; privsep: boolean; expire: number; comment: string } & Partial<Pick<TokenFact, 'owner' | 'daysLeft' | 'state' | 'ownerUsable' | 'ownerRefusal'>>)[];
  matrix: AccessMatrix | null;
  /** Groups, pools, roles, privileges per path and the findings (access-audit.ts); absent off a Proxmox VE node. */
  access?: AccessFacts;
  /** The steps' own parts, in catalogue order. */
  sections: StepSection[];
  changes: {
    step: string;
    status: StepRecord['status'];
    updatedAt: string;
    files: { path: string; backup: string }[];
    proof?: AccessProofRecord;
    /** 'datacenter': shared by every node of a cluster; 'node': this node's own. Absent for a step this version does not know. */
    scope?: Scope;
    /** For a datacenter step: the node the cluster-wide record names as having applied it, and when. */
    appliedFrom?: { node: string; at: string };
  }[];
  /** The node the document is written on, as Proxmox names it (the host name up to the first dot). */
  writtenOn?: string;
  /** The commands and files the facts came from. */
  evidence: string[];
}

export interface AccessFacts {
  summary: AccessSummary;
  /** each user and token on each path where it has a privilege (matrix paths and pool members) */
  privileges: PathPrivileges[];
  findings: Finding[];
  /** who may hold Administrator (root@pam always may) */
  declaredAdmins: string[];
  /** accounts kept disabled on purpose with their roles */
  breakGlass: string[];
}

/** What collectPolicyFacts may be told instead of reading it itself. */
export interface PolicyOptions {
  /** epoch seconds; default the clock */
  now?: number;
  /** userids allowed Administrator; default `declaredAdminsFrom(records)` */
  declaredAdmins?: string[];
  /** accounts disabled on purpose with their roles; default `breakGlassFrom(records)` */
  breakGlass?: string[];
}

const answerText = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() ? v.trim() : undefined);
const answerList = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '') : typeof v === 'string' ? v.split(/[\s,]+/).filter(Boolean) : [];

/**
 * The userids the operator declared as admins, from the journal's answers:
 * the admin-account step's `name` (NAME@pam), and the `admins` of the access
 * model an answers file declared (`access-model.access.admins`).
 */
export function declaredAdminsFrom(records: Readonly<Record<string, StepRecord>>): string[] {
  const out = new Set<string>();
  const admin = answerText(records['admin-account']?.answers?.name);
  if (admin) out.add(`${admin}@pam`);
  const model = records['access-model']?.answers?.access;
  if (typeof model === 'object' && model !== null && !Array.isArray(model)) for (const id of answerList((model as { admins?: unknown }).admins)) out.add(id);
  return [...out].sort();
}

/** The break-glass account (NAME@pam) when the operator wanted one: disabled on purpose, Administrator on / by design. */
export function breakGlassFrom(records: Readonly<Record<string, StepRecord>>): string[] {
  const answers = records['break-glass']?.answers;
  const name = answerText(answers?.name);
  return answers?.wanted === true && name ? [`${name}@pam`] : [];
}

export interface StepSection {
  stepId: string;
  section: DocumentSection;
}

const LOGIN_SHELL = (shell: string) => !/(nologin|false|sync|halt|shutdown)$/.test(shell);

/** `iface vmbr0 inet static` lines of /etc/network/interfaces. */
export function parseBridges(interfaces: string): string[] {
  return [...interfaces.matchAll(/^\s*iface\s+(vmbr\S+)/gm)].map((m) => m[1]!).filter((v, i, a) => a.indexOf(v) === i);
}

/**
 * Each step's section, in catalogue order, from its `document` hook. A step
 * that cannot apply to this node (its `requires`) is left out; a hook that
 * fails gives a section saying so, never a missing or broken document.
 */
export async function collectStepSections(ctx: StepContext, steps: readonly AnyStep[], records: Readonly<Record<string, StepRecord>>): Promise<StepSection[]> {
  const out: StepSection[] = [];
  for (const step of steps) {
    if (!step.document || step.requires?.(ctx.node)) continue;
    let section: DocumentSection | undefined;
    try {
      section = await step.document(ctx, keptAnswers(step, records[step.id]?.answers));
    } catch (error) {
      const message = (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
      section = { heading: step.title, blocks: [{ kind: 'paragraph', text: `pve-baseline could not read this part from the node: ${message.replace(/[`\\*_<>[\]]/g, '\\$&')}` }] };
    }
    if (section) out.push({ stepId: step.id, section });
  }
  return out;
}

export async function collectPolicyFacts(
  ctx: { exec: Exec; files: Files; node: NodeInfo },
  steps: readonly AnyStep[],
  records: Readonly<Record<string, StepRecord>>,
  journalPath: string,
  options: PolicyOptions = {},
): Promise<PolicyFacts> {
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const { files, node } = ctx;
  const evidence: string[] = [];
  const read = async (path: string) => {
    evidence.push(`read ${path}`);
    return (await files.read(path).catch(() => null)) ?? '';
  };
  const accounts = await readAccounts(files);
  evidence.push('read /etc/passwd, /etc/group, /etc/shadow (password states only)');
  const linuxAdmins = accounts.users
    .filter((u) => LOGIN_SHELL(u.shell) || memberOf(accounts, u.name, 'sudo'))
    .map((u) => ({ name: u.name, uid: u.uid, shell: u.shell, sudo: memberOf(accounts, u.name, 'sudo'), password: accounts.passwords.get(u.name) ?? ('unknown' as const) }))
    .sort((a, b) => a.uid - b.uid);

  const userCfgText = node.proxmox ? await read('/etc/pve/user.cfg') : '';
  const cfg = node.proxmox ? parseUserCfg(userCfgText, { major: node.proxmox.major >= 9 ? 9 : 8 }).cfg : null;
  const pveUsers: PolicyFacts['pveUsers'] = [];
  const tokens: PolicyFacts['tokens'] = [];
  if (cfg) {
    for (const [userid, u] of [...cfg.users].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const groups = [...cfg.groups].filter(([, g]) => g.users.has(userid)).map(([name]) => name).sort();
      pveUsers.push({ userid, realm: userid.split('@')[1] ?? '', enabled: !!u.enable, expire: u.expire, groups, tfa: /^x(!|$)/.test(u.keys ?? ''), comment: u.comment ?? '' });
    }
    // Sorted by full id, as Proxmox lists them; never the secret (priv/token.cfg is not read).
    for (const t of tokenFacts(cfg, now)) {
      tokens.push({
        id: t.id,
        owner: t.owner,
        privsep: !!t.privsep,
        expire: t.expire,
        daysLeft: t.daysLeft,
        state: t.state,
        comment: t.comment,
        ownerUsable: t.ownerUsable,
        ...(t.ownerRefusal !== undefined ? { ownerRefusal: t.ownerRefusal } : {}),
      });
    }
  }
  let access: AccessFacts | undefined;
  if (cfg) {
    const declaredAdmins = options.declaredAdmins ?? declaredAdminsFrom(records);
    const breakGlass = options.breakGlass ?? breakGlassFrom(records);
    access = {
      summary: accessSummary(cfg),
      privileges: privilegesByPath(cfg),
      findings: accessFindings(cfg, { now, declaredAdmins, breakGlass }),
      declaredAdmins,
      breakGlass,
    };
  }

  // The steps read the node through the same context they get from the runner, with the journal for answers.
  const stepCtx: StepContext = {
    exec: ctx.exec,
    files,
    node,
    log: () => undefined,
    answersOf: (step) => keptAnswers(step, records[step.id]?.answers),
    journalRecords: () => records,
  };
  const sections = await collectStepSections(stepCtx, steps, records);
  for (const { section } of sections) for (const e of section.evidence ?? []) if (!evidence.includes(e)) evidence.push(e);

  // Which node applied each datacenter step: the record /etc/pve shares with every node (src/engine/datacenter.ts).
  const datacenter = await readDatacenterRecord(files);
  if (Object.keys(datacenter.entries).length) evidence.push(`read ${DATACENTER_RECORD}`);
  const scopeOf = (id: string) => steps.find((s) => s.id === id)?.scope;
  const changes = Object.entries(records)
    .map(([step, r]) => ({
      step,
      ...(scopeOf(step) ? { scope: scopeOf(step)! } : {}),
      ...(scopeOf(step) === 'datacenter' && datacenter.entries[step] ? { appliedFrom: { node: datacenter.entries[step]!.node, at: datacenter.entries[step]!.at } } : {}),
      status: r.status,
      updatedAt: r.updatedAt,
      files: r.applied.flatMap((a) => (a.kind === 'file' ? [{ path: a.path, backup: a.backup.existed ? a.backup.copy ?? '' : '(did not exist before)' }] : [])),
      ...(r.proof ? { proof: r.proof } : {}),
    }))
    .sort((a, b) => (a.updatedAt < b.updatedAt ? -1 : a.updatedAt > b.updatedAt ? 1 : a.step < b.step ? -1 : 1));
  evidence.push(`read ${journalPath}`);

  return {
    node: {
      hostname: node.hostname,
      proxmox: node.proxmox?.version ?? null,
      debian: node.debian ? `${node.debian.version} (${node.debian.codename})` : null,
      addresses: node.addresses.map((a) => `${a.cidr} (${a.iface})`).sort(),
      bridges: parseBridges(await read('/etc/network/interfaces')),
      storage: node.proxmox ? parseStorage(await read('/etc/pve/storage.cfg')) : [],
    },
    linuxAdmins,
    pveUsers,
    tokens,
    matrix: cfg ? accessMatrix(cfg) : null,
    ...(access ? { access } : {}),
    sections,
    changes,
    writtenOn: nodeName(node),
    evidence,
  };
}
