/**
 * Shared by the lab test files: get the (shared, already booted) lab, or skip
 * with a clear reason where the lab cannot run. In CI (CI=true) an
 * unsupported machine is a failure, not a skip.
 */
import { test } from 'node:test';
import { request as httpsRequest } from 'node:https';
import { ensureLab, labSupport, type Lab } from './lab.ts';
import { KEYS, type PtyStep } from '../support/pty.ts';

export async function labOrSkip(): Promise<Lab | undefined> {
  const support = await labSupport();
  if (!support.ok) {
    if (process.env.CI === 'true') throw new Error(`the lab cannot run in CI: ${support.reason}`);
    test(`lab tests skipped: ${support.reason}`, { skip: support.reason }, () => {});
    return undefined;
  }
  return ensureLab({ log: (l) => process.stderr.write(`lab: ${l}\n`) });
}

/** exec in the node and fail with the command's output when it does not exit 0 */
export async function sh(lab: Lab, script: string): Promise<string> {
  const r = await lab.exec(['sh', '-c', script]);
  if (r.exitCode !== 0) throw new Error(`'${script}' exited ${r.exitCode}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** The built bundle as /usr/local/bin/pve-baseline in the node, as an operator installs it. */
export async function installBundle(lab: Lab): Promise<void> {
  const { chmodSync, copyFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { ensureBundle } = await import('../support/bundle.ts');
  const target = join(lab.rootDir, 'usr/local/bin/pve-baseline');
  copyFileSync(await ensureBundle(), target);
  chmodSync(target, 0o755);
}

/** Poll `check` every 100 ms until it holds; fail naming `what` after `timeoutMs`. */
export async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const STATE_DIR = '/var/lib/pve-baseline';

export interface JournalStepView {
  status?: string;
  guard?: { phase?: string; revertId?: string };
  history?: { at: string; status: string; note?: string }[];
  applied?: unknown[];
}

/** One step's record in the node's journal, or undefined. */
export async function journalStep(lab: Lab, id: string): Promise<JournalStepView | undefined> {
  const r = await lab.exec(['cat', `${STATE_DIR}/journal.json`]);
  if (r.exitCode !== 0) return undefined;
  try {
    return JSON.parse(r.stdout).steps?.[id];
  } catch {
    return undefined;
  }
}

/** The reverts the node's index lists (a reverted one stays listed until the next run notes it). */
export async function armedReverts(lab: Lab): Promise<{ id: string; deadline: number }[]> {
  return JSON.parse(await sh(lab, `cat ${STATE_DIR}/revert/armed.json`)) as { id: string; deadline: number }[];
}

/** When the node's own revert first logged "reverted" at or after `after` (epoch ms, from the journal's clock). */
export async function revertedAt(lab: Lab, after = 0): Promise<number | undefined> {
  const out = await sh(lab, 'journalctl -t pve-baseline -o short-unix --no-pager 2>/dev/null || true');
  return out
    .split('\n')
    .filter((l) => /: revert \S+: reverted$/.test(l))
    .map((l) => Math.round(Number(l.split(' ')[0]) * 1000))
    .find((t) => t >= after);
}

/**
 * The wizard from the update steps to its end, for the tests about earlier
 * steps: the update and access steps skipped at their first question, the
 * plans of sysctl and the document answered with `decision` (enter applies,
 * s skips), then the summary and the exit.
 */
export function restOfTheWizard(decision: string): PtyStep[] {
  return [
    ...skipUpdateSteps(),
    { waitFor: 'Plan:', timeoutMs: 30_000 }, // sysctl
    { send: decision },
    ...skipAccessSteps(),
    ...skipBackupStep(),
    { waitFor: 'Plan:', timeoutMs: 30_000 }, // the document
    { send: decision },
    { waitFor: 'Finished:', timeoutMs: 30_000 },
    { waitExit: true, timeoutMs: 10_000 },
  ];
}

/** Esc at the first question of the repositories and auto-updates steps (the upgrade then waits for the repositories: skipped too). */
export function skipUpdateSteps(): PtyStep[] {
  return [
    { waitFor: '? Which Proxmox VE repository?', timeoutMs: 30_000 },
    { send: KEYS.escape },
    { waitFor: "Also install updates from Proxmox's repositories unattended?", timeoutMs: 30_000 },
    { send: KEYS.escape },
  ];
}

/** Esc at the first question of the access-model and api-tokens steps: both skipped (for the wizard tests about other steps). */
export function skipAccessSteps(): PtyStep[] {
  return [
    { waitFor: '? Which access model?', timeoutMs: 30_000 },
    { send: KEYS.escape },
    { waitFor: '? Service account', timeoutMs: 30_000 },
    { send: KEYS.escape },
  ];
}

/**
 * From the welcome screen to the repositories, with the account steps done
 * before: Enter, then Esc at the first question of the sshd, firewall,
 * fail2ban and 2FA steps (all skipped).
 */
export function skipToUpdates(): PtyStep[] {
  return [
    { waitFor: 'Nothing changes until you have seen the plan', timeoutMs: 20_000 },
    { send: KEYS.enter },
    { waitFor: 'How may root log in over SSH?', timeoutMs: 60_000 },
    { send: KEYS.escape },
    { waitFor: 'Addresses and networks that may manage this node', timeoutMs: 30_000 },
    { send: KEYS.escape },
    { waitFor: 'Addresses fail2ban must never ban', timeoutMs: 30_000 },
    { send: KEYS.escape },
    { waitFor: 'Proxmox account to protect with a second factor', timeoutMs: 30_000 },
    { send: KEYS.escape },
  ];
}

/** Esc at the config backup's first question: skipped (for the wizard tests about other steps). */
export function skipBackupStep(): PtyStep[] {
  return [
    { waitFor: '? Where does the backup go, off this node?', timeoutMs: 30_000 },
    { send: KEYS.escape },
  ];
}

/** The sshd step's questions in the wizard, each with its default, and a revert window of `seconds`. */
export function sshdQuestions(seconds: number): PtyStep[] {
  return [
    { waitFor: 'How may root log in over SSH?', timeoutMs: 30_000 },
    { send: KEYS.enter },
    { waitFor: 'Who may log in over SSH at all?' },
    { send: KEYS.enter },
    { waitFor: 'Other accounts that may log in' },
    { send: KEYS.enter },
    { waitFor: 'Crypto profile' },
    { send: KEYS.enter },
    { waitFor: 'Seconds you have to log in again' },
    { send: `${seconds}\r` },
  ];
}

/**
 * An HTTPS request to the web UI's port from a workstation-side address, as a
 * browser opening https://NODE:8006 makes it (the lab's pveproxy answers 501
 * outside the API, and logs the request): its status, or 'no answer' (dropped, refused).
 */
export function webGet(lab: Lab, from?: string, timeoutMs = 3000): Promise<number | 'no answer'> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      { host: lab.nodeAddress, port: 8006, path: '/', rejectUnauthorized: false, timeout: timeoutMs, ...(from ? { localAddress: from } : {}) },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => (req.destroy(), resolve('no answer')));
    req.on('error', () => resolve('no answer'));
    req.end();
  });
}

/** The admin steps' answers (alice, her password and key, no break-glass), for tests that start after them. */
export function adminAnswers(password: string, extra: string[] = []): string {
  return [
    'version: 1',
    'admin-account:',
    '  name: alice',
    '  role: Administrator',
    `  password: ${JSON.stringify(password)}`,
    'ssh-key:',
    '  keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBzMmJQ/lF5LPkyxriainemGcr9oCV76cb+ICTEJDV5Z alice@laptop"',
    '  also_root: no',
    'break-glass:',
    '  wanted: no',
    ...extra,
    '',
  ].join('\n');
}

/** A form POST to the node's API over HTTPS from a workstation-side address: status and parsed body. */
export function apiPost(lab: Lab, path: string, form: Record<string, string>, from?: string): Promise<{ status: number; body: { data?: Record<string, unknown> } }> {
  const body = new URLSearchParams(form).toString();
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: lab.nodeAddress,
        port: 8006,
        method: 'POST',
        path: `/api2/json${path}`,
        rejectUnauthorized: false, // the node's self-signed certificate; 83-api pins it, this only logs in
        timeout: 10_000,
        ...(from ? { localAddress: from } : {}),
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || '{}') });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: {} });
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer from 8006')));
    req.on('error', reject);
    req.end(body);
  });
}

/** The web UI's login as a person makes it: the password, then the TOTP code. Resolves with the final status. */
export async function webLoginWithTotp(lab: Lab, user: string, password: string, code: string, from?: string): Promise<number> {
  const first = await apiPost(lab, '/access/ticket', { username: user, password, 'new-format': '1' }, from);
  if (first.status !== 200) return first.status;
  const ticket = String(first.body.data?.ticket ?? '');
  if (!first.body.data?.NeedTFA) return 200;
  const second = await apiPost(lab, '/access/ticket', { username: user, 'tfa-challenge': ticket, password: `totp:${code}`, 'new-format': '1' }, from);
  return second.status;
}

/**
 * A person's web login with password and code once the two-factor step's
 * own proof is done: the step marks itself applied before it proves the
 * factor with a code of its own, and Proxmox takes each time step once, so
 * a login in between, or in the proof's step, would not count as newer.
 * Waits for the proof, then for a time step after the last one accepted.
 */
export async function webLoginAfterProof(lab: Lab, user: string, password: string, secret: string, from?: string): Promise<{ status: number; at: number }> {
  const { totpCode } = await import('../../src/tfa/totp-codes.ts');
  const { Secret } = await import('../../src/system/secret.ts');
  await waitUntil(async () => ['proven', 'kept'].includes((await journalStep(lab, 'two-factor'))?.guard?.phase ?? ''), 'the two-factor step\'s own proof', 120_000);
  const tfa = JSON.parse((await lab.exec(['cat', '/etc/pve/priv/tfa.cfg'])).stdout || '{}') as { users?: Record<string, { totp?: { entry: unknown }[] }> };
  const counts = (tfa.users?.[user]?.totp ?? []).map((e) => (typeof e.entry === 'object' && e.entry !== null ? Number((e.entry as { 'last-count'?: number })['last-count'] ?? 0) : 0));
  const last = Math.max(0, ...counts);
  await waitUntil(async () => Math.floor(Date.now() / 30_000) > last, 'a time step after the last code Proxmox took', 40_000);
  const at = Date.now();
  return { status: await webLoginWithTotp(lab, user, password, totpCode(new Secret(secret)), from), at };
}

/** The TOTP secret as the wizard shows it beside its QR code: 8 groups of 4 base32 characters. */
export function secretOnScreen(screen: string): string | undefined {
  return /\b([A-Z2-7]{4}(?: [A-Z2-7]{4}){7})\b/.exec(screen)?.[1]?.replace(/ /g, '');
}

/**
 * The two-factor step in the wizard, answered as a person with a phone does:
 * the account (the default), its password twice, then the code; the test
 * plays the phone with `actAsPhone` on the same files.
 */
export function twoFactorEnrolment(files: { screen: string; code: string }, password: string): PtyStep[] {
  return [
    { waitFor: 'Proxmox account to protect with a second factor', timeoutMs: 30_000 },
    { send: KEYS.enter },
    { waitFor: 'Its password' },
    { send: `${password}\r` },
    { waitFor: '(again)' },
    { send: `${password}\r` },
    { waitFor: 'Scan the QR code with your authenticator app', timeoutMs: 20_000 },
    { screenTo: files.screen },
    { sendFromFile: files.code, timeoutMs: 20_000 },
  ];
}

/** The phone: reads the secret off the screen the wizard wrote, types the current code. Resolves with the secret. */
export async function actAsPhone(files: { screen: string; code: string }, timeoutMs = 180_000): Promise<string> {
  const { existsSync, readFileSync, writeFileSync } = await import('node:fs');
  const { totpCode } = await import('../../src/tfa/totp-codes.ts');
  const { Secret } = await import('../../src/system/secret.ts');
  await waitUntil(async () => existsSync(files.screen), 'the QR code on the screen', timeoutMs);
  const screen = readFileSync(files.screen, 'utf8');
  const secret = secretOnScreen(screen);
  if (!secret) throw new Error(`no TOTP secret on the screen:\n${screen}`);
  writeFileSync(files.code, `${totpCode(new Secret(secret))}\r`);
  return secret;
}

/** The fail2ban step's questions in the wizard, each with its default, up to its plan. */
export function fail2banDefaults(): PtyStep[] {
  return [
    { waitFor: 'Addresses fail2ban must never ban', timeoutMs: 30_000 },
    { send: KEYS.enter },
    { waitFor: 'Failed SSH logins before a ban' },
    { send: KEYS.enter },
    { waitFor: 'Failed web UI logins before a ban' },
    { send: KEYS.enter },
    { waitFor: 'Minutes in which the failures count' },
    { send: KEYS.enter },
    { waitFor: 'Minutes a ban lasts' },
    { send: KEYS.enter },
    { waitFor: 'Plan:', timeoutMs: 30_000 },
  ];
}

export interface ApiAnswer {
  status: number;
  /** the reason phrase: Proxmox puts its error message there */
  reason: string;
  json: { data: unknown; message?: string; errors?: Record<string, string> } | undefined;
}

/**
 * One call to the node's API on 8006 from the workstation side over HTTPS, the
 * certificate checked against the node's pve-root-ca.pem (as 83-api does):
 * a form body, a ticket cookie with its CSRF token, or an API token.
 */
export async function apiCall(
  lab: Lab,
  method: string,
  path: string,
  opts: { form?: Record<string, string>; ticket?: string; csrf?: string; token?: string; from?: string } = {},
): Promise<ApiAnswer> {
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const ca = readFileSync(join(lab.rootDir, 'etc/pve/pve-root-ca.pem'));
  const body = opts.form ? new URLSearchParams(opts.form).toString() : undefined;
  const headers: Record<string, string> = {};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    headers['Content-Length'] = String(Buffer.byteLength(body));
  }
  if (opts.ticket) headers.Cookie = `PVEAuthCookie=${encodeURIComponent(opts.ticket)}`;
  if (opts.csrf) headers.CSRFPreventionToken = opts.csrf;
  if (opts.token) headers.Authorization = `PVEAPIToken=${opts.token}`;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: lab.nodeAddress,
        port: 8006,
        method,
        path: `/api2/json${path}`,
        headers,
        ca,
        localAddress: opts.from ?? lab.workstationAddress,
        checkServerIdentity: () => undefined, // the chain is checked against the node's CA; the name is the node's, not the address
        timeout: 20_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let json: ApiAnswer['json'];
          try {
            json = JSON.parse(text) as ApiAnswer['json'];
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? '', json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Log in over HTTPS (POST /access/ticket): the ticket and CSRF token, or throw with the status. */
export async function apiLogin(lab: Lab, username: string, password: string): Promise<{ ticket: string; csrf: string }> {
  const r = await apiCall(lab, 'POST', '/access/ticket', { form: { username, password } });
  const d = r.json?.data as { ticket?: string; CSRFPreventionToken?: string; NeedTFA?: number } | undefined;
  if (r.status !== 200 || !d?.ticket || d.NeedTFA) throw new Error(`login as ${username}: ${r.status} ${r.reason}`);
  return { ticket: d.ticket, csrf: d.CSRFPreventionToken ?? '' };
}
