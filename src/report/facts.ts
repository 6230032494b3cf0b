/**
 * What the access-policy document says, read from the node itself (never
 * from the answers), so it stays true after later changes and can be
 * regenerated at any time. Nothing secret is collected: password states,
 * never hashes; token ids, never values.
 */
import type { StepRecord } from '../engine/journal.ts';
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
  /** `sshd -T`, keyword -> values; or why it could not be read. */
  ssh: { values: Record<string, string[]> } | { error: string };
  breakGlass: string | null;
  changes: { step: string; status: StepRecord['status']; updatedAt: string; files: { path: string; backup: string }[] }[];
  /** The commands and files the facts came from. */
  evidence: string[];
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

/** `sshd -T` output: lowercase `keyword value` lines; repeated keywords collect. */
export function parseSshdValues(text: string): Record<string, string[]> {
  const values: Record<string, string[]> = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^(\S+)\s+(.*)$/);
    if (m) (values[m[1]!.toLowerCase()] ??= []).push(m[2]!.trim());
  }
  return values;
}

export async function collectPolicyFacts(
  ctx: { exec: Exec; files: Files; node: NodeInfo },
  records: Readonly<Record<string, StepRecord>>,
  journalPath: string,
): Promise<PolicyFacts> {
  const { exec, files, node } = ctx;
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

  evidence.push('sshd -T');
  const sshd = await exec.run(['sshd', '-T']);
  const ssh = sshd.exitCode === 0 ? { values: parseSshdValues(sshd.stdout) } : { error: (sshd.stderr || sshd.stdout).trim() || `sshd -T exited ${sshd.exitCode}` };

  const changes = Object.entries(records)
    .map(([step, r]) => ({
      step,
      status: r.status,
      updatedAt: r.updatedAt,
      files: r.applied.flatMap((a) => (a.kind === 'file' ? [{ path: a.path, backup: a.backup.existed ? a.backup.copy ?? '' : '(did not exist before)' }] : [])),
    }))
    .sort((a, b) => (a.updatedAt < b.updatedAt ? -1 : a.updatedAt > b.updatedAt ? 1 : a.step < b.step ? -1 : 1));
  const bg = records['break-glass']?.answers;
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
    ssh,
    breakGlass: bg?.wanted === true && typeof bg.name === 'string' ? bg.name : null,
    changes,
    evidence,
  };
}
