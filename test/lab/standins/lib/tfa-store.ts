/**
 * Where the lab keeps Proxmox's TFA state: /etc/pve/priv/tfa.cfg (through
 * the pmxcfs stand-in, under lock_tfa_config's lock) and the per-user failure
 * counters, which proxmox-tfa keeps apart from tfa.cfg in its challenge data
 * (api/mod.rs TfaUserChallenges). They live in /run/pve-private/tfa, one JSON
 * file per user, root-only: gone at reboot, shared by pvedaemon and pveum.
 */
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTfaCfg, writeTfaCfg, TfaError, type FailureCounts, type TfaConfig } from '../../../../src/pve/tfa-cfg.ts';
import { lockFile, readFile, updateUserCfg, writeFile } from './pmxcfs.ts';
import { PveError } from './schema.ts';

export const CHALLENGE_DIR = process.env.PVE_LAB_TFA_CHALLENGE_DIR ?? '/run/pve-private/tfa';

export const nowSecs = () => Math.floor(Date.now() / 1000);

/** TfaError -> die "...\n" (PVE::RS errors surface as plain dies) */
export function tfaDie<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TfaError) throw new PveError(`${e.message}\n`);
    throw e;
  }
}

export const readTfaCfg = (): TfaConfig => tfaDie(() => parseTfaCfg(readFile('priv/tfa.cfg'), nowSecs()));
export const writeTfaCfgFile = (cfg: TfaConfig): void => writeFile('priv/tfa.cfg', writeTfaCfg(cfg));

/** PVE::AccessControl::lock_tfa_config */
export const lockTfaConfig = <T>(fn: () => T): T => lockFile('priv/tfa.cfg', fn);

const countsFile = (userid: string) => join(CHALLENGE_DIR, encodeURIComponent(userid));

export function readCounts(userid: string): FailureCounts {
  try {
    const o = JSON.parse(readFileSync(countsFile(userid), 'utf8')) as Record<string, unknown>;
    return { totpFailures: Number(o['totp-failures'] ?? 0) || 0, tfaFailures: Number(o['tfa-failures'] ?? 0) || 0 };
  } catch {
    return { totpFailures: 0, tfaFailures: 0 };
  }
}

export function writeCounts(userid: string, c: FailureCounts): void {
  mkdirSync(CHALLENGE_DIR, { recursive: true, mode: 0o700 });
  const file = countsFile(userid);
  if (c.totpFailures === 0 && c.tfaFailures === 0) {
    try {
      unlinkSync(file);
    } catch {
      /* none */
    }
    return;
  }
  const tmp = `${file}.tmp.${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ 'totp-failures': c.totpFailures, 'tfa-failures': c.tfaFailures }), { mode: 0o600 });
  renameSync(tmp, file);
}

/** API2/TFA.pm set_user_tfa_enabled: keys 'x' while the user has entries, unset otherwise */
export function setUserTfaEnabled(userid: string, enabled: boolean): void {
  updateUserCfg((cfg) => {
    const u = cfg.users.get(userid);
    if (!u) return;
    if (enabled) u.keys = 'x';
    else delete u.keys;
  });
}
