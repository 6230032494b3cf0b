/**
 * What the access-policy document says, read from the node itself (never
 * from the answers), so it stays true after later changes and can be
 * regenerated at any time. Nothing secret is collected: password states,
 * never hashes; token ids, never values.
 *
 * The report's own facts are the node, its accounts, the access matrix, the
 * tokens and the change log; every other part comes from the steps' own
 * `document` hooks, in catalogue order, so the report names no step.
 */
import type { AccessProofRecord, StepRecord } from '../engine/journal.ts';
import { keptAnswers, type AnyStep, type StepContext } from '../engine/step.ts';
import type { DocumentSection } from './section.ts';
import { memberOf, readAccounts, type PasswordState } from '../system/accounts.ts';
import type { NodeInfo } from '../system/detect.ts';
import type { Exec } from '../system/exec.ts';
import type { Files } from '../system/files.ts';
import { accessMatrix, type AccessMatrix } from '../pve/permissions.ts';
import { parseUserCfg } from '../pve/user-cfg.ts';

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
  tokens: { id: string; privsep: boolean; expire: number; comment: string }[];
  matrix: AccessMatrix | null;
  /** The steps' own parts, in catalogue order. */
  sections: StepSection[];
  changes: { step: string; status: StepRecord['status']; updatedAt: string; files: { path: string; backup: string }[]; proof?: AccessProofRecord }[];
  /** The commands and files the facts came from. */
  evidence: string[];
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

/** Section headers and content lines of /etc/pve/storage.cfg. */
export function parseStorage(text: string): PolicyFacts['node']['storage'] {
  const out: PolicyFacts['node']['storage'] = [];
  for (const line of text.split('\n')) {
    const head = line.match(/^(\w+):\s*(\S+)\s*$/);
    if (head) out.push({ type: head[1]!, id: head[2]!, content: '' });
    const content = line.match(/^\s+content\s+(\S+)/);
    if (content && out.length) out[out.length - 1]!.content = content[1]!;
  }
  return out;
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
): Promise<PolicyFacts> {
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
      for (const [sub, t] of [...u.tokens].sort(([a], [b]) => (a < b ? -1 : 1))) {
        tokens.push({ id: `${userid}!${sub}`, privsep: !!t.privsep, expire: t.expire, comment: t.comment ?? '' });
      }
    }
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

  const changes = Object.entries(records)
    .map(([step, r]) => ({
      step,
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
    sections,
    changes,
    evidence,
  };
}
