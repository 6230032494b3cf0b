/**
 * Issue 13 on the lab node: two-factor login enrolled from the wizard over
 * `ssh -t`, as a person does it: the QR code on the screen (its secret read
 * back from the screen, as a phone would from the code), the code typed, the
 * recovery keys shown once, then a real web login with password + code from
 * the workstation side ends the countdown. The lab's API (83-api) checks the
 * codes as Proxmox does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jsqr from 'jsqr';
import { KEYS, ptyEnv, runInPty, type PtyStep } from '../support/pty.ts';
import { adminAnswers, apiPost, installBundle, journalStep, labOrSkip, secretOnScreen, sh, restOfTheWizard, sshdQuestions, waitUntil, webLoginAfterProof, webLoginWithTotp } from './helpers.ts';
import { Secret } from '../../src/system/secret.ts';
import { totpCode } from '../../src/tfa/totp-codes.ts';

// jsqr is CommonJS with an ES-style default in its types; module.exports.default is the function.
const jsQR = jsqr.default;
const lab = await labOrSkip();
const PASSWORD = 'correct horse battery staple';
const ADMIN_ANSWERS = adminAnswers(PASSWORD);

/** The QR code on the screen (half blocks, light modules drawn), decoded as a phone would. */
function qrOnScreen(screen: string[]): string | undefined {
  const rows = screen.filter((l) => /[▀▄█]/.test(l));
  if (!rows.length) return undefined;
  const start = Math.min(...rows.map((l) => l.search(/[▀▄█]/)));
  const width = Math.max(...rows.map((l) => l.length)) - start;
  const scale = 4;
  const h = rows.length * 2 * scale;
  const w = width * scale;
  const pixels = new Uint8ClampedArray(w * h * 4);
  rows.forEach((line, r) => {
    for (let c = 0; c < width; c++) {
      const ch = line[start + c] ?? ' ';
      // The glyph is drawn (light) where the terminal's foreground shows: top half, bottom half or both.
      const top = ch === '█' || ch === '▀';
      const bottom = ch === '█' || ch === '▄';
      for (let dy = 0; dy < 2 * scale; dy++) {
        const light = dy < scale ? top : bottom;
        for (let dx = 0; dx < scale; dx++) {
          const i = ((r * 2 * scale + dy) * w + c * scale + dx) * 4;
          const v = light ? 255 : 0;
          pixels[i] = pixels[i + 1] = pixels[i + 2] = v;
          pixels[i + 3] = 255;
        }
      }
    }
  });
  return jsQR(pixels, w, h, { inversionAttempts: 'dontInvert' })?.data;
}

if (lab) {
  const OP = lab.remoteOperatorAddress;

  test('the wizard enrols TOTP for alice@pam: QR code, code, recovery keys once; a web login with password + code ends the countdown', async () => {
    await lab.reset();
    await installBundle(lab);
    writeFileSync(join(lab.rootDir, 'root/admin.yml'), ADMIN_ANSWERS, { mode: 0o600 });
    const admin = await lab.exec(['pve-baseline', 'apply', '--answers', '/root/admin.yml', '--yes', '--only', 'admin-account,ssh-key,break-glass'], { timeoutMs: 120_000 });
    assert.equal(admin.exitCode, 0, admin.stdout + admin.stderr);

    // Before: alice logs in to the API with her password alone.
    assert.equal(await webLoginWithTotp(lab, 'alice@pam', PASSWORD, '000000', OP), 200);

    const dir = mkdtempSync(join(tmpdir(), 'pve-2fa-'));
    const screenFile = join(dir, 'screen.txt');
    const codeFile = join(dir, 'code.txt');
    const script: PtyStep[] = [
      { waitFor: 'Nothing changes until you have seen the plan', timeoutMs: 20_000 },
      { send: KEYS.enter },
      ...sshdQuestions(120),
      { waitFor: 'to apply, or', timeoutMs: 30_000 },
      { send: 'skip\r' }, // the sshd step: skipped at its plan (82 proves it)
      { waitFor: 'Addresses and networks that may manage this node', timeoutMs: 30_000 },
      { send: KEYS.escape }, // the firewall and fail2ban: skipped at their first question
      { waitFor: 'Addresses fail2ban must never ban', timeoutMs: 30_000 },
      { send: KEYS.escape },
      { waitFor: 'Proxmox account to protect with a second factor', timeoutMs: 30_000 },
      { send: KEYS.enter }, // alice@pam, the admin
      { waitFor: 'Its password' },
      { send: `${PASSWORD}\r` },
      { waitFor: '(again)' },
      { send: `${PASSWORD}\r` },
      { waitFor: 'Scan the QR code with your authenticator app', timeoutMs: 20_000 },
      { snapshot: 'qr' },
      { screenTo: screenFile },
      { sendFromFile: codeFile, timeoutMs: 20_000 },
      { waitFor: 'to apply, or', timeoutMs: 30_000 },
      { send: 'pve1\r' },
      { waitFor: 'Recovery keys for alice@pam', timeoutMs: 60_000 },
      { snapshot: 'recovery' },
      { send: 'w' },
      { waitFor: 'Prove you can still log in', timeoutMs: 60_000 },
      { snapshot: 'countdown' },
      { waitFor: 'Two-factor login for the web UI: verified', timeoutMs: 120_000 },
      ...restOfTheWizard('s'),
    ];
    const wizard = runInPty({
      argv: ['sshpass', '-e', 'ssh', '-t', ...lab.sshClientArgs('root', ['-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password'], OP), 'pve-baseline'],
      env: ptyEnv({ SSHPASS: lab.rootPassword, TERM: 'xterm-256color' }),
      cols: 120,
      rows: 50,
      script,
      maxMs: 300_000,
    });

    // The phone: read the QR code off the screen, type the code it shows.
    await waitUntil(async () => existsSync(screenFile), 'the QR code on the screen', 120_000);
    const screen = readFileSync(screenFile, 'utf8');
    const secret = secretOnScreen(screen);
    assert.ok(secret, `the secret is shown beside the QR code:\n${screen}`);
    const uri = qrOnScreen(screen.split('\n'));
    assert.equal(uri, `otpauth://totp/Proxmox%20-%20pve1:alice%40pam?secret=${secret}&period=30&digits=6&algorithm=SHA1&issuer=Proxmox%20-%20pve1`, 'the QR code decodes to the URI of the secret shown');
    writeFileSync(codeFile, `${totpCode(new Secret(secret!))}\r`);

    // Once it is live: the password alone no longer opens the API; password + code from the workstation does.
    await waitUntil(async () => (await journalStep(lab, 'two-factor'))?.status === 'applied', 'the TOTP entry', 120_000);
    const half = await apiPost(lab, '/access/ticket', { username: 'alice@pam', password: PASSWORD, 'new-format': '1' }, OP);
    assert.equal(half.body.data?.NeedTFA, 1, 'the password alone asks for the second factor');
    assert.equal(await webLoginWithTotp(lab, 'alice@pam', PASSWORD, '123456', OP), 401, 'a wrong code is refused');
    const { status, at: loginAt } = await webLoginAfterProof(lab, 'alice@pam', PASSWORD, secret!, OP);
    assert.equal(status, 200, 'password + code: in');
    await waitUntil(async () => (await journalStep(lab, 'two-factor'))?.status === 'verified', 'the step verified', 60_000);
    const verifiedAt = Date.parse((await journalStep(lab, 'two-factor'))!.history!.at(-1)!.at);
    process.stderr.write(`measured: two-factor, the web login to the step verified: ${verifiedAt - loginAt} ms\n`);

    const r = await wizard;
    rmSync(dir, { recursive: true, force: true });
    assert.ok(r.ok, r.timedOut ? `${r.timedOut.reason}\n${r.timedOut.tail}` : r.plain);
    const keys = r.snapshots.find((s) => s.name === 'recovery')!.screen.join('\n').match(/\b[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}\b/g) ?? [];
    assert.equal(keys.length, 10, 'ten recovery keys, shown once');
    assert.match(await sh(lab, "journalctl -u pvedaemon.service -p err --no-pager -o cat | grep 'user=alice@pam' | tail -1"), /authentication failure; rhost=::ffff:10\.77\.9\.1 user=alice@pam msg=/, 'the wrong code is logged as Proxmox logs it');

    // A recovery key works once, and only once.
    const first = await apiPost(lab, '/access/ticket', { username: 'alice@pam', password: PASSWORD, 'new-format': '1' }, OP);
    const ticket = String(first.body.data?.ticket);
    assert.equal((await apiPost(lab, '/access/ticket', { username: 'alice@pam', 'tfa-challenge': ticket, password: `recovery:${keys[0]}` }, OP)).status, 200);
    const again = await apiPost(lab, '/access/ticket', { username: 'alice@pam', password: PASSWORD, 'new-format': '1' }, OP);
    assert.equal((await apiPost(lab, '/access/ticket', { username: 'alice@pam', 'tfa-challenge': String(again.body.data?.ticket), password: `recovery:${keys[0]}` }, OP)).status, 401);

    // Secrets nowhere but Proxmox's own tfa.cfg: not in the journal, the backups, the wizard log or the document.
    const docs = await lab.exec(['pve-baseline', 'docs', '--out', '/root/policy.md']);
    assert.equal(docs.exitCode, 0, docs.stderr);
    for (const seeded of [secret!, keys[1]!, PASSWORD]) {
      const found = await lab.exec(['grep', '-rlF', seeded, '/var/lib/pve-baseline', '/root/policy.md']);
      assert.equal(found.stdout.trim(), '', `${seeded.slice(0, 4)}... is in no file of pve-baseline's`);
    }
    assert.match(await sh(lab, 'cat /root/policy.md'), /\| alice@pam \| TOTP \(1\) \| 9 of 10 unused \| no \|/);

    // A second run adopts the entry: nothing planned; check calls it compliant.
    const check = JSON.parse((await lab.exec(['pve-baseline', 'check', '--json'])).stdout) as { steps: { id: string; status: string }[] };
    assert.equal(check.steps.find((s) => s.id === 'two-factor')?.status, 'compliant');

    // Eight wrong codes lock TOTP (Proxmox's limit): check says so and how to unlock; unlocking makes it compliant again.
    for (let i = 0; i < 8; i++) assert.equal(await webLoginWithTotp(lab, 'alice@pam', PASSWORD, '000000', OP), 401);
    const locked = await lab.exec(['pve-baseline', 'check']);
    assert.equal(locked.exitCode, 1, locked.stdout);
    assert.match(locked.stdout, /two-factor\s+drift\s+.*alice@pam's TOTP is not locked \(8 wrong codes locked it: log in with a recovery key, or run pveum user tfa unlock alice@pam\)/);
    await sh(lab, 'pveum user tfa unlock alice@pam');
    assert.equal(JSON.parse((await lab.exec(['pve-baseline', 'check', '--json'])).stdout).steps.find((s: { id: string }) => s.id === 'two-factor')?.status, 'compliant');
  });

  test('bad input: a wrong first code is refused and nothing is stored; unattended, the step says to run the wizard', async () => {
    writeFileSync(join(lab.rootDir, 'root/tfa.yml'), 'version: 1\ntwo-factor:\n  user: alice@pam\n', { mode: 0o600 });
    await sh(lab, 'pveum user tfa delete alice@pam >/dev/null');
    const before = await sh(lab, 'sha256sum /etc/pve/priv/tfa.cfg 2>/dev/null || echo absent');
    const headless = await lab.exec(['pve-baseline', 'apply', '--answers', '/root/tfa.yml', '--yes', '--only', 'two-factor']);
    assert.match(headless.stdout, /needs the wizard: scan a QR code with your authenticator app/);
    const refused = await lab.exec(['sh', '-c', "printf 'version: 1\\ntwo-factor:\\n  user: alice@pam\\n  code: \"123456\"\\n' > /root/bad.yml; pve-baseline apply --answers /root/bad.yml --only two-factor"]);
    assert.equal(refused.exitCode, 2);
    assert.match(refused.stderr, /two-factor\.code: only the wizard can ask this/);
    assert.equal(await sh(lab, 'sha256sum /etc/pve/priv/tfa.cfg 2>/dev/null || echo absent'), before, 'nothing stored');
  });
}
