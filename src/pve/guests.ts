/**
 * What the node holds that an access model names: guest ids (every node's
 * qemu-server and lxc configs under /etc/pve/nodes, as Proxmox's vmlist
 * knows them) and storage ids (storage.cfg section headers).
 */
import type { Files } from '../system/files.ts';

export const NODES_DIR = '/etc/pve/nodes';
export const STORAGE_CFG = '/etc/pve/storage.cfg';

/** Guest ids on every node of the cluster, as strings ("100"). */
export async function guestIds(files: Pick<Files, 'list'>): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const node of await files.list(NODES_DIR)) {
    for (const kind of ['qemu-server', 'lxc']) {
      for (const name of await files.list(`${NODES_DIR}/${node}/${kind}`)) {
        const m = /^([1-9]\d{2,8})\.conf$/.exec(name);
        if (m) ids.add(m[1]!);
      }
    }
  }
  return ids;
}

/** The storages storage.cfg defines, each with its type and content (`dir: local` then `\tcontent iso,backup`). */
export function parseStorage(storageCfg: string): { id: string; type: string; content: string }[] {
  const out: { id: string; type: string; content: string }[] = [];
  for (const line of storageCfg.split('\n')) {
    const head = /^(\w+):\s*(\S+)\s*$/.exec(line);
    if (head) out.push({ type: head[1]!, id: head[2]!, content: '' });
    const content = /^\s+content\s+(\S+)/.exec(line);
    if (content && out.length) out[out.length - 1]!.content = content[1]!;
  }
  return out;
}

/** The storage ids storage.cfg defines (`dir: local`, `lvmthin: local-lvm`). */
export function storageIds(storageCfg: string): Set<string> {
  return new Set(parseStorage(storageCfg).map((s) => s.id));
}
