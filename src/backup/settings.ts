/**
 * How this node's config backup is set up: written by the config-backup step
 * (steps/config-backup.ts) to /etc/pve-baseline/config-backup.json (0600),
 * read by `pve-baseline backup` and the timer that runs it. Nothing secret
 * in it: the age recipients are public keys, and the identity and the SSH
 * key are named by path, never held.
 */

export const SETTINGS_FILE = '/etc/pve-baseline/config-backup.json';
/** Under the state directory: the archives, the keys the step makes, the last result. */
export const BACKUP_DIR_NAME = 'config-backup';
export const UNIT_NAME = 'pve-baseline-config-backup';

export type Destination =
  | { kind: 'sftp'; host: string; port: number; user: string; dir: string; hostKey: string; keyFile: string }
  | { kind: 'path'; dir: string };

export interface BackupSettings {
  version: 1;
  /** age recipients (age1..., ssh-ed25519 ..., ssh-rsa ...): the archive opens with any one's identity; identityFile's own recipient is added at run time. */
  recipients: string[];
  /** The identity kept on the node for drills (made by the step); absent when the operator keeps theirs away. */
  identityFile?: string;
  /** Archives kept, here and at the destination. */
  keep: number;
  destination: Destination;
  /** systemd OnCalendar= of the recurring run. */
  schedule: 'daily' | 'weekly';
}

/** age's recipient forms: native X25519 (bech32), and the SSH public keys age accepts. */
export const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
export const SSH_RECIPIENT = /^(ssh-ed25519|ssh-rsa)\s+([A-Za-z0-9+/]+={0,2})(\s.*)?$/;
export function isRecipient(value: string): boolean {
  const r = value.trim();
  return AGE_RECIPIENT.test(r) || SSH_RECIPIENT.test(r);
}
/** OpenSSH's fingerprint form, as `ssh-keygen -lf` prints it. */
export const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** What is wrong with settings read back from the file, or null (by hand, like the journal's check: a small shape). */
export function settingsProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'it is not a JSON object';
  const s = value as Record<string, unknown>;
  if (s.version !== 1) return `version is ${JSON.stringify(s.version)}, not 1`;
  if (!Array.isArray(s.recipients) || !s.recipients.every((r) => typeof r === 'string' && isRecipient(r))) return 'recipients must be a list of age recipients';
  if (s.identityFile !== undefined && (typeof s.identityFile !== 'string' || !s.identityFile.startsWith('/'))) return 'identityFile must be an absolute path';
  if (!s.recipients.length && s.identityFile === undefined) return 'there must be a recipient, or an identity kept on the node';
  if (!Number.isInteger(s.keep) || (s.keep as number) < 1 || (s.keep as number) > 365) return 'keep must be a whole number from 1 to 365';
  if (s.schedule !== 'daily' && s.schedule !== 'weekly') return 'schedule must be daily or weekly';
  const d = s.destination as Record<string, unknown> | undefined;
  if (!d || typeof d !== 'object') return 'destination is missing';
  if (d.kind === 'path') return typeof d.dir === 'string' && d.dir.startsWith('/') ? null : 'destination.dir must be an absolute path';
  if (d.kind !== 'sftp') return 'destination.kind must be sftp or path';
  if (typeof d.host !== 'string' || !d.host) return 'destination.host is missing';
  if (!Number.isInteger(d.port) || (d.port as number) < 1 || (d.port as number) > 65535) return 'destination.port must be 1-65535';
  if (typeof d.user !== 'string' || !d.user) return 'destination.user is missing';
  if (typeof d.dir !== 'string' || !d.dir) return 'destination.dir is missing';
  if (typeof d.hostKey !== 'string' || !FINGERPRINT.test(d.hostKey)) return 'destination.hostKey must be a SHA256: fingerprint';
  if (typeof d.keyFile !== 'string' || !d.keyFile.startsWith('/')) return 'destination.keyFile must be an absolute path';
  return null;
}

export function parseSettings(text: string): BackupSettings {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${SETTINGS_FILE} is not JSON: ${(error as Error).message}`);
  }
  const problem = settingsProblem(value);
  if (problem) throw new Error(`${SETTINGS_FILE}: ${problem}`);
  return value as BackupSettings;
}

export function renderSettings(settings: BackupSettings): string {
  return `${JSON.stringify(settings, null, 2)}\n`;
}

/** "sftp://backup@10.0.0.9:22/srv/pve" or the mounted directory. */
export function describeDestination(d: Destination): string {
  return d.kind === 'sftp' ? `sftp://${d.user}@${d.host}:${d.port}${d.dir.startsWith('/') ? '' : '/'}${d.dir}` : d.dir;
}

/** The service and timer that run `pve-baseline backup` on the schedule. */
export function backupUnits(program: string, schedule: BackupSettings['schedule']): { service: string; timer: string } {
  return {
    service: [
      '# Written by pve-baseline (step "config-backup"): the encrypted config backup, copied off the node and drilled.',
      '[Unit]',
      'Description=pve-baseline: config backup, off the node, drilled',
      'After=network-online.target pve-cluster.service',
      'Wants=network-online.target',
      '',
      '[Service]',
      'Type=oneshot',
      `ExecStart=${program} backup`,
      // A backup must not starve guests: it yields the CPU and the disks.
      'Nice=10',
      'IOSchedulingClass=idle',
      '',
    ].join('\n'),
    timer: [
      '# Written by pve-baseline (step "config-backup").',
      '[Unit]',
      `Description=pve-baseline: config backup, ${schedule}`,
      '',
      '[Timer]',
      `OnCalendar=${schedule}`,
      // A run missed while the node was off happens at the next boot.
      'Persistent=true',
      'RandomizedDelaySec=1h',
      '',
      '[Install]',
      'WantedBy=timers.target',
      '',
    ].join('\n'),
  };
}
