/**
 * Two-factor login (TOTP) for the web UI and the API, enrolled from the
 * terminal and proven by a real login before it is kept (the seeds: "Web UI
 * -> Datacenter -> Permissions -> Two Factor, scan the QR code").
 *
 *   questions    the account (the admin by default; never root@pam), its password (Proxmox asks the
 *                user's own password before it adds a factor, as the web UI does), then the code an
 *                authenticator app shows after scanning the QR code of a fresh secret; the code is
 *                checked here against the secret and again by Proxmox when it is registered
 *   apply        two calls of Proxmox's API as that user, over HTTPS to the node itself, so the secret,
 *                the code and the password travel only in request bodies, never in a process list:
 *                the TOTP entry, then recovery keys, which the wizard shows once and nothing keeps
 *   lockout      from the first call on, the web UI wants the code: under the node's own revert
 *                (tfa.cfg and user.cfg put back byte for byte) until a person proves a login with
 *                password + code: Proxmox's tfa.cfg records the step of each accepted code (last-count)
 *   prove        an API login with the password and a code made from the secret still in memory
 *
 * An account that already has a TOTP entry is adopted, never given a second.
 * Realm-wide enforcement (`pveum realm modify pam --tfa ...`) is never set:
 * it would lock out root@pam and the break-glass account.
 */
import type { Change } from '../src/engine/change.ts';
import type { Check, Step, StepContext } from '../src/engine/step.ts';
import { ask } from '../src/engine/questions.ts';
import { bullets, code, paragraph, table, type DocumentSection } from '../src/report/section.ts';
import { parseTfaCfg, type TfaConfig, type TfaUserData } from '../src/pve/tfa-cfg.ts';
import { parseUserCfg } from '../src/pve/user-cfg.ts';
import { checkCodeFormat, normalizeCode, proxmoxTotpUri } from '../src/tfa/totp.ts';

/** The TOTP arithmetic (the otpauth library), loaded when this step runs, not with the first frame. */
const totpCodes = () => import('../src/tfa/totp-codes.ts');
import { Secret } from '../src/system/secret.ts';
import { findAdmin } from './admin-account.ts';

export const TFA_CFG = '/etc/pve/priv/tfa.cfg';
export const USER_CFG = '/etc/pve/user.cfg';
const DESCRIPTION = 'pve-baseline: authenticator app';
const USERID = /^[^\s:@/]{1,64}@(pam|pve)$/;
/** Why an answers file cannot finish the step: it supplies nothing secret, and nobody could scan the QR code. */
const ENROL_IN_THE_WIZARD = 'scan a QR code with your authenticator app and type the code it shows; run pve-baseline (the wizard) for this step';

export interface TwoFactorFacts {
  hostname: string;
  /** Proxmox users, by userid, with whether they are enabled. */
  users: Map<string, { enable: boolean }>;
  tfa: TfaConfig;
  /** The raw files, for the revert and the "changed since the plan" check (never shown: tfa.cfg holds secrets). */
  tfaCfg: string | null;
  userCfg: string | null;
  /** The admin's Proxmox user, when the admin step ran. */
  admin?: string;
  /** A fresh secret for this run; only memory holds it until Proxmox stores it. */
  secret: Secret;
}

export type TwoFactorAnswers = {
  user: string;
  password?: Secret;
  code?: Secret;
};

function userData(facts: TwoFactorFacts, user: string): TfaUserData | undefined {
  return facts.tfa.users.get(user);
}

/** The URI the authenticator app gets, as the web UI builds it (issuer "Proxmox - HOSTNAME"). */
function uriOf(facts: TwoFactorFacts, user: string): Secret {
  return proxmoxTotpUri({ secret: facts.secret, userid: user, issuer: `Proxmox - ${facts.hostname}` });
}

const hasTotp = (facts: TwoFactorFacts, user: string) => (userData(facts, user)?.totp.length ?? 0) > 0;

export const twoFactorStep: Step<TwoFactorFacts, TwoFactorAnswers> = {
  id: 'two-factor',
  title: 'Two-factor login for the web UI',
  summary: 'A TOTP authenticator app and one-time recovery keys for your Proxmox login, proven by a real login before they are kept.',
  scope: 'datacenter',
  risk: 'lockout',

  questions: [
    ask.text({
      id: 'user',
      prompt: 'Proxmox account to protect with a second factor',
      help: 'A person’s account (@pam or @pve). Not root@pam: it is the account of last resort, and the break-glass procedure relies on it.',
      maxLength: 80,
      detect: (facts) => facts.admin,
      check: async (value, _answers, ctx) => {
        if (!USERID.test(value)) return `${JSON.stringify(value)} is not a Proxmox user of the pam or pve realm (wanted e.g. alice@pam)`;
        if (value === 'root@pam') return 'root@pam stays without a second factor: it is the way back in when everything else fails';
        const facts = ctx.facts as TwoFactorFacts | undefined;
        if (facts && !facts.users.has(value)) return `no Proxmox user ${value} on this node (pveum user list shows the users)`;
        if (facts && facts.users.get(value)?.enable === false) return `${value} is disabled in Proxmox: enable it first, or choose an account in use`;
        return undefined;
      },
    }),
    {
      ...ask.password({
        id: 'password',
        prompt: 'Its password (Proxmox asks the user’s own password before adding a factor)',
        help: 'Used for two calls of the Proxmox API on this node over HTTPS, and to prove the login; never stored.',
        minLength: 1,
        when: (answers, facts) => typeof answers.user === 'string' && !hasTotp(facts, answers.user),
      }),
      interactiveOnly: ENROL_IN_THE_WIZARD,
    },
    {
      ...ask.secretText({
        id: 'code',
        prompt: 'Scan the QR code with your authenticator app, then type the 6-digit code it shows',
        help: 'Any TOTP app works (FreeOTP, Aegis, Google Authenticator, 1Password, Bitwarden). The code is checked here, and again by Proxmox.',
        maxLength: 16,
        check: async (value, _answers, ctx) => {
          const facts = ctx.facts as TwoFactorFacts | undefined;
          const problem = checkCodeFormat(value);
          if (problem) return problem;
          if (facts && !(await totpCodes()).verifyTotp(facts.secret, value)) return 'that code does not match: check the phone’s clock, and type the code shown now';
          return undefined;
        },
      }),
      interactiveOnly: ENROL_IN_THE_WIZARD,
      when: (answers: Record<string, unknown>, facts: TwoFactorFacts) => typeof answers.user === 'string' && !hasTotp(facts, answers.user),
      display: (facts: TwoFactorFacts, answers: Record<string, unknown>) =>
        typeof answers.user === 'string'
          ? { qr: { text: uriOf(facts, answers.user), secretText: facts.secret, caption: `Proxmox - ${facts.hostname}: ${answers.user}` } }
          : undefined,
    },
  ],

  requires: (node) => (node.proxmox ? undefined : 'needs a Proxmox VE node'),

  async probe(ctx) {
    const userCfg = await ctx.files.read(USER_CFG);
    const tfaCfg = await ctx.files.read(TFA_CFG);
    const parsed = parseUserCfg(userCfg ?? undefined).cfg;
    const users = new Map([...parsed.users].map(([id, u]) => [id, { enable: u.enable === 1 }]));
    const { admin } = await findAdmin(ctx);
    return {
      hostname: ctx.node.hostname.split('.')[0]!,
      users,
      tfa: parseTfaCfg(tfaCfg ?? undefined),
      tfaCfg,
      userCfg,
      ...(admin ? { admin: `${admin.name}@pam` } : {}),
      secret: (await totpCodes()).newTotpSecret(),
    };
  },

  plan(facts, answers) {
    const user = answers.user;
    if (hasTotp(facts, user)) return []; // adopted: the account has an authenticator already
    if (!answers.password || !answers.code) return [];
    const as = { user, password: answers.password };
    const writes = [
      { path: TFA_CFG, before: facts.tfaCfg, unshown: 'it holds every TOTP secret of the cluster' },
      { path: USER_CFG, before: facts.userCfg, unshown: `Proxmox marks ${user} as having a second factor (keys: x)` },
    ];
    const changes: Change[] = [
      {
        kind: 'api',
        method: 'POST',
        path: `/access/tfa/${user}`,
        params: { type: 'totp', description: DESCRIPTION, totp: uriOf(facts, user), value: new Secret(normalizeCode(answers.code.reveal())) },
        as,
        writes,
        activates: true,
        reason: `${user} logs in to the web UI and the API with a code from the authenticator app, after the password`,
      },
    ];
    if (!userData(facts, user)?.recovery) {
      changes.push({
        kind: 'api',
        method: 'POST',
        path: `/access/tfa/${user}`,
        params: { type: 'recovery' },
        as,
        writes: [{ path: TFA_CFG, before: null, unshown: 'it holds every TOTP secret of the cluster' }],
        reveal: {
          field: 'recovery',
          title: `Recovery keys for ${user}`,
          advice: 'Each key logs in once instead of a code, should the phone be lost. Write them down now and keep them apart from the phone: pve-baseline keeps no copy, and Proxmox shows them only this once.',
        },
        reason: 'ten one-time keys for when the phone is lost (Proxmox also unlocks a TOTP lock with one)',
      });
    }
    return changes;
  },

  // Read-only, and only what Proxmox stores: no new secret, no TOTP library.
  async verify(ctx, answers) {
    return statusChecks(parseTfaCfg((await ctx.files.read(TFA_CFG)) ?? undefined), answers.user);
  },

  guard: {
    reload: [],
    seconds: 300,
    // An SSH login proves nothing about the web UI's second factor: only the account's own login does.
    provenOnlyBy: 'the account logs in to the web UI with its password and a code from the app (run pve-baseline again: the wizard sees that login)',

    async prove(ctx, answers, facts) {
      const user = answers.user;
      if (!ctx.api || !answers.password) return [{ label: `${user} logs in with the password and a code`, ok: false, detail: 'no API of this node to log in to' }];
      try {
        // The previous step's code: Proxmox takes ±1 step, and a person's next login uses a later one (no reuse).
        const { totpCode } = await totpCodes();
        await ctx.api.login(user, answers.password, () => new Secret(`totp:${totpCode(facts.secret, Date.now() - 30_000)}`));
        return [{ label: `${user} logs in to the API with the password and a TOTP code`, ok: true }];
      } catch (error) {
        return [{ label: `${user} logs in to the API with the password and a TOTP code`, ok: false, detail: (error as Error).message }];
      }
    },

    access(ctx, answers) {
      const user = answers.user;
      return {
        instructions: [`Keep this session open. Log in to the web UI as ${user} with the password and a code from the app:`, `https://${ctx.node.session.kind === 'ssh' ? ctx.node.session.serverAddress : ctx.node.hostname}:8006`],
        watch: async (_since, signal) => {
          // Proxmox records the step of every accepted code in tfa.cfg (last-count): a newer one than the automatic proof's is the person's.
          const start = lastCount(parseTfaCfg((await ctx.files.read(TFA_CFG)) ?? undefined), user);
          while (!signal.aborted) {
            const now = lastCount(parseTfaCfg((await ctx.files.read(TFA_CFG)) ?? undefined), user);
            if (now !== null && (start === null || now > start)) {
              return { detail: `${user} logged in with the password and a TOTP code (accepted by Proxmox for the period starting ${new Date(now * 30_000).toISOString()})`, user };
            }
            await new Promise<void>((resolve) => {
              const t = setTimeout(resolve, 1000);
              signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
            });
          }
          return null;
        },
      };
    },
  },

  document: async (ctx) => twoFactorDocument(ctx),
};

function lastCount(cfg: TfaConfig, user: string): number | null {
  const counts = (cfg.users.get(user)?.totp ?? []).map((t) => t.lastCount).filter((c): c is number => c !== null);
  return counts.length ? Math.max(...counts) : null;
}

function statusChecks(tfa: TfaConfig, user: string): Check[] {
  const data = tfa.users.get(user);
  const totp = data?.totp.filter((t) => t.enable) ?? [];
  const left = data?.recovery?.entries.filter((e) => e !== null).length ?? 0;
  return [
    { label: `${user} has a TOTP authenticator`, ok: totp.length > 0, ...(totp.length ? {} : { detail: 'no enabled TOTP entry in Proxmox (pveum user tfa list)' }) },
    { label: `${user} has unused recovery keys`, ok: left > 0, ...(left ? { detail: `${left} of ${data?.recovery?.entries.length ?? 0} left` } : { detail: data?.recovery ? 'every key is used: make new ones in the web UI' : 'none' }) },
    { label: `${user}'s TOTP is not locked`, ok: !data?.totpLocked, ...(data?.totpLocked ? { detail: `8 wrong codes locked it: log in with a recovery key, or run pveum user tfa unlock ${user}` } : {}) },
  ];
}

/** Who has which second factor; never a secret. */
export async function twoFactorDocument(ctx: StepContext): Promise<DocumentSection> {
  const tfa = parseTfaCfg((await ctx.files.read(TFA_CFG)) ?? undefined);
  const rows = [...tfa.users].map(([user, d]) => {
    const kinds = [d.totp.length ? `TOTP (${d.totp.length})` : '', d.webauthn.length ? `WebAuthn (${d.webauthn.length})` : '', d.u2f.length ? `U2F (${d.u2f.length})` : '', d.yubico.length ? `Yubico OTP (${d.yubico.length})` : ''].filter(Boolean);
    const recovery = d.recovery ? `${d.recovery.entries.filter((e) => e !== null).length} of ${d.recovery.entries.length} unused` : 'none';
    const locked = d.totpLocked ? 'TOTP locked (8 wrong codes)' : d.tfaLockedUntil ? `all factors locked until ${new Date(d.tfaLockedUntil * 1000).toISOString()}` : 'no';
    return [user, kinds.join(', ') || 'none', recovery, locked];
  });
  return {
    heading: 'Two-factor login',
    blocks: [
      bullets([
        'A second factor guards logins to the web UI and the API with a password (tickets). It does not apply to SSH or to API tokens.',
        'No realm enforces a second factor: that would lock out root@pam and the break-glass account.',
        `Lost phone: log in with a recovery key, then remove the old entry and add a new one. Locked after 8 wrong codes: a recovery key, or ${code('pveum user tfa unlock USER')} as root.`,
      ]),
      rows.length ? table(['Account', 'Second factors', 'Recovery keys', 'Locked'], rows) : paragraph('No account has a second factor yet.'),
    ],
    evidence: [`read ${TFA_CFG} (factor types and counts only)`],
  };
}
