/**
 * What the `pve-firewall` command says, read into data
 * (pve-firewall's Service/pve_firewall.pm: status, compile, localnet, simulate).
 */
import type { Exec } from '../system/exec.ts';

export interface FirewallStatus {
  /** `enabled` or `disabled`, as the cluster option says. */
  enabled: boolean;
  running: boolean;
  /** ` (pending changes)`: the compiled rules differ from what the kernel has. */
  pending: boolean;
  line: string;
}

/** `Status: enabled/running (pending changes)` */
export function parseStatus(text: string): FirewallStatus | null {
  const line = text.split('\n').find((l) => l.startsWith('Status:'))?.trim();
  const m = line ? /^Status: (enabled|disabled)\/(running|stopped)( \(pending changes\))?/.exec(line) : null;
  if (!m || !line) return null;
  return { enabled: m[1] === 'enabled', running: m[2] === 'running', pending: m[3] !== undefined, line };
}

export async function readStatus(exec: Exec): Promise<FirewallStatus | { error: string }> {
  const r = await exec.run(['pve-firewall', 'status'], { timeoutMs: 30_000 });
  return parseStatus(r.stdout) ?? { error: (r.stderr || r.stdout).trim() || `pve-firewall status exited ${r.exitCode}` };
}

export interface LocalNet {
  hostname?: string;
  address?: string;
  /** The network Proxmox merges into the management set. */
  network?: string;
  userDefined: boolean;
}

/**
 * `pve-firewall localnet`:
 *   local hostname: pve1
 *   local IP address: 10.77.7.2
 *   network auto detect: 10.77.7.0/24
 *   using detected local_network: 10.77.7.0/24   (or: using user defined local_network: ...)
 */
export function parseLocalnet(text: string): LocalNet {
  const field = (re: RegExp) => re.exec(text)?.[1]?.trim();
  const user = field(/^using user defined local_network: (\S+)/m);
  const detected = field(/^using detected local_network: (\S+)/m);
  const hostname = field(/^local hostname: (\S+)/m);
  const address = field(/^local IP address: (\S+)/m);
  const network = user ?? detected;
  return { userDefined: user !== undefined, ...(hostname ? { hostname } : {}), ...(address ? { address } : {}), ...(network ? { network } : {}) };
}

export async function readLocalnet(exec: Exec): Promise<LocalNet> {
  const r = await exec.run(['pve-firewall', 'localnet'], { timeoutMs: 30_000 });
  return parseLocalnet(r.stdout);
}

/**
 * The problems `pve-firewall compile` reports on stderr for the files as they
 * are: `<file> (line N) - errors in rule parameters: ...`, `... unable to
 * parse ...`, `can't parse option ...`. Proxmox skips such a rule and still
 * applies the policy, so any of them is a refusal.
 */
export function compileWarnings(stderr: string): string[] {
  return stderr
    .replace(/\r/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

export async function readCompileWarnings(exec: Exec): Promise<{ warnings: string[] } | { error: string }> {
  const r = await exec.run(['pve-firewall', 'compile'], { timeoutMs: 60_000 });
  if (r.exitCode !== 0) return { error: (r.stderr || r.stdout).trim() || `pve-firewall compile exited ${r.exitCode}` };
  return { warnings: compileWarnings(r.stderr) };
}

/** `ACTION: ACCEPT` at the end of `pve-firewall simulate`. */
export function parseSimulate(text: string): string | null {
  return /^ACTION: (\S+)/m.exec(text)?.[1] ?? null;
}

/** What Proxmox's simulator says a new TCP connection from `source` to the node's `port` meets (IPv4 only, the iptables daemon only). */
export async function simulateTcp(exec: Exec, source: string, port: number): Promise<{ action: string } | { error: string }> {
  const r = await exec.run(['pve-firewall', 'simulate', '--source', source, '--dport', String(port), '--protocol', 'tcp'], { timeoutMs: 60_000 });
  const action = parseSimulate(r.stdout);
  return action ? { action } : { error: (r.stderr || r.stdout).trim().split('\n').slice(-3).join('; ') || `pve-firewall simulate exited ${r.exitCode}` };
}
