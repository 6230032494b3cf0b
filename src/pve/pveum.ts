/**
 * Reading Proxmox's users and ACLs through pveum, as JSON. The shapes are
 * those of GET /access/users and GET /access/acl (pve-access-control's API2/User.pm and API2/ACL.pm).
 */
import { runChecked, type Exec } from '../system/exec.ts';

export interface PveUser {
  userid: string;
  enable?: number;
  expire?: number;
  email?: string;
  comment?: string;
  keys?: string;
  groups?: string;
}

export interface PveAclEntry {
  path: string;
  roleid: string;
  type: 'user' | 'group' | 'token';
  ugid: string;
  propagate: number;
}

export async function listUsers(exec: Exec): Promise<PveUser[]> {
  const r = await runChecked(exec, ['pveum', 'user', 'list', '--output-format', 'json']);
  return JSON.parse(r.stdout || '[]') as PveUser[];
}

export async function listAcl(exec: Exec): Promise<PveAclEntry[]> {
  const r = await runChecked(exec, ['pveum', 'acl', 'list', '--output-format', 'json']);
  return JSON.parse(r.stdout || '[]') as PveAclEntry[];
}

/** The roles a user holds directly on a path (not inherited, not through groups). */
export function rolesOn(acl: readonly PveAclEntry[], userid: string, path: string): string[] {
  return acl.filter((a) => a.type === 'user' && a.ugid === userid && a.path === path).map((a) => a.roleid);
}
