/**
 * sshd hardening (what every hardening guide asks: "disable root login and
 * passwords, test from a second session before you disconnect"), done so that no
 * sequence of events can lock the operator out.
 *
 * One drop-in, /etc/ssh/sshd_config.d/00-pve-baseline.conf, read before
 * every other file (for most keywords sshd keeps the first value it reads).
 * Its settings, each with its reason and its Proxmox exception, come from
 * src/ssh/sshd.ts; the crypto lists from what the installed OpenSSH supports.
 *
 * The lockout protocol (src/engine/guarded-apply.ts) is run by the engine from `guard`:
 *   preflight       refuse before anything is shown: no accepted key, the admin outside AllowGroups
 *   beforeActivate  after writing, before the reload: sshd -t, sshd -T against the intent
 *                   (naming the file that wins), the admin's way back in from where they are
 *   reload          systemctl reload ssh (never restart: open sessions survive)
 *   verify          read-only: the drop-in and sshd -T say what was intended
 *   prove           live: an ephemeral probe key logs in; root and passwords are refused
 *   access          the operator logs in from a new terminal with their own key
 */
import type { Change } from '../src/engine/change.ts';
import type { Check, Step, StepContext } from '../src/engine/step.ts';
import { ask } from '../src/engine/questions.ts';
import { memberOf, NAME_MAX, readAccounts, type AccountHome, type Accounts, type PasswdEntry } from '../src/system/accounts.ts';
import { findAdmin } from './admin-account.ts';
import type { NodeInfo } from '../src/system/detect.ts';
import { describeKey, readCheckedKeys, type PublicKey } from '../src/ssh/keys.ts';
import { describeLogin, watchForLogin } from '../src/ssh/login-watch.ts';
import { makeProbeKey, probe, PROBE_COMMENT, probeKeyDir, probeKeyLine, probeWithOpenSsh, withoutProbeKey, type ExpectedAlgorithms } from '../src/ssh/prober.ts';
import {
  compareIntent,
  cryptoLists,
  describeWinner,
  DROP_IN,
  intentSettings,
  readConfigFiles,
  readEffective,
  readSupported,
  renderDropIn,
  STRICT_CLIENT_CAVEATS,
  whoWins,
  type Difference,
  type SshdIntent,
  type SshdSetting,
  type SupportedAlgorithms,
} from '../src/ssh/sshd.ts';
import { SSHD } from '../src/ssh/sshd-crypto.ts';
import { addressMatches, admissionProblem, hostIn, keyRefusal, networkOf } from '../src/ssh/sshd-access.ts';
import { bullets, code, paragraph, table, type DocumentSection } from '../src/report/section.ts';

interface SshdFacts {
  admin: AccountHome | undefined;
  accounts: Accounts;
  /** The keys in the admin's authorized_keys (probe lines excluded): the operator's own. */
  adminKeys: PublicKey[];
  supported: SupportedAlgorithms;
  dropIn: string | null;
  /** The node's own IPv4 networks (vmbr0 and the like): the default for root's networks. */
  networks: string[];
  /** The node's first IPv4 address: where the probe connects, and what the operator types. */
  nodeAddress: string | undefined;
}

const ROOT_FROM_ANYWHERE = 'With a key only, from anywhere';
/** A user or group name as AllowUsers/AllowGroups take it: no sshd pattern characters (*, ?, !, @). */
const ACCOUNT_NAME = /^[a-z_][a-z0-9_.-]*\$?$/i;

/** What the step is told. */
export type SshdAnswers = {
  root_login: 'prohibit-password' | 'networks';
  /** Networks in canonical form (host bits clear); only with root_login: networks. */
  root_networks?: string[];
  allow_mode: 'users' | 'groups';
  allow_users?: string[];
  allow_groups?: string[];
  profile: 'compatible' | 'strict';
  revert_seconds: number;
};

/** What the answers ask for, as the settings model takes it. */
function intentOf(facts: SshdFacts, answers: SshdAnswers): SshdIntent {
  return {
    admins: [facts.admin!.name],
    allow: answers.allow_mode === 'groups' ? { mode: 'groups', names: answers.allow_groups ?? [] } : { mode: 'users', names: answers.allow_users ?? [] },
    root: answers.root_login === 'networks' ? { no: true, matchAddresses: answers.root_networks ?? [] } : 'prohibit-password',
    profile: answers.profile,
  };
}

function settingsOf(facts: SshdFacts, answers: SshdAnswers): { intent: SshdIntent; settings: SshdSetting[]; content: string } {
  const intent = intentOf(facts, answers);
  const settings = intentSettings(intent, facts.supported);
  return { intent, settings, content: renderDropIn(settings, intent) };
}

/** Global settings as a file says them (first value wins; Match blocks ignored): keyword (lowercase) -> the line's keyword and value. */
function settingsInFile(text: string): Map<string, { keyword: string; value: string }> {
  const out = new Map<string, { keyword: string; value: string }>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [keyword = '', ...rest] = line.split(/\s+/);
    if (/^match$/i.test(keyword)) break;
    if (!out.has(keyword.toLowerCase())) out.set(keyword.toLowerCase(), { keyword, value: rest.join(' ') });
  }
  return out;
}

/** Why the drop-in on the node is not the intended one, naming each setting that differs. */
function dropInDrift(before: string | null, settings: SshdSetting[], after: string): string {
  if (before === null) return 'the hardened settings, in a drop-in read before every other (00-): no passwords, keys only, modern crypto';
  const have = settingsInFile(before);
  const drift = settings
    .filter((s) => !s.match && !s.leaveDefault)
    .filter((s) => have.get(s.keyword.toLowerCase())?.value !== s.value)
    .map((s) => `${s.keyword} is ${have.get(s.keyword.toLowerCase())?.value ?? 'missing'} (wanted ${s.value})`);
  const wanted = settingsInFile(after);
  const extra = [...have.entries()].filter(([k]) => !wanted.has(k)).map(([, line]) => `${line.keyword} ${line.value} was added`);
  const all = [...drift, ...extra];
  return all.length ? `the drop-in was changed: ${all.join('; ')}` : 'the drop-in was changed (comments or Match block); it is written as pve-baseline renders it';
}

/** Where the operator is now, and so where they must be able to log in from. */
function operatorAddress(node: NodeInfo, facts: SshdFacts): string {
  return node.session.kind === 'ssh' ? node.session.clientAddress : (facts.nodeAddress ?? '127.0.0.1');
}

function groupsOf(accounts: Accounts, user: PasswdEntry): string[] {
  return accounts.groups
    .filter((g) => memberOf(accounts, user.name, g.name))
    .map((g) => g.name)
    .sort();
}

/** Intended values sshd -T does not show, each with the file (or Match block) that sets the keyword instead. */
async function differences(ctx: StepContext, settings: SshdSetting[], diffs: Difference[]): Promise<Check[]> {
  const serious = diffs.filter((d) => !d.advisory);
  if (!serious.length) return [];
  const files = await readConfigFiles(ctx.files, (dir) => ctx.files.list(dir));
  return serious.map((d) => ({
    label: `sshd -T shows ${d.keyword} ${d.wanted}`,
    ok: false,
    detail: `it shows ${d.actual ?? 'nothing'}: ${describeWinner(whoWins(d.keyword, files))}`,
  }));
}

/** The effective configuration against the intent: globally, for root from its networks, and for the admin from where the operator is. */
async function effectiveChecks(ctx: StepContext, facts: SshdFacts, answers: SshdAnswers, settings: SshdSetting[]): Promise<Check[]> {
  const admin = facts.admin!;
  const global = await readEffective(ctx.exec);
  if (!global.ok) return [{ label: 'sshd -T reads the configuration', ok: false, detail: global.error }];
  const globalDiffs = compareIntent(settings, global.effective);
  const checks: Check[] = await differences(ctx, settings, globalDiffs);
  if (!checks.length) checks.push({ label: 'sshd -T shows every intended value', ok: true });

  const from = operatorAddress(ctx.node, facts);
  const forAdmin = await readEffective(ctx.exec, { user: admin.name, addr: from });
  if (!forAdmin.ok) return [...checks, { label: `sshd -T for ${admin.name} from ${from}`, ok: false, detail: forAdmin.error }];
  const problem = admissionProblem(forAdmin.effective, admin.name, groupsOf(facts.accounts, admin), from);
  checks.push({
    label: `${admin.name} can still log in with a key from ${from}${ctx.node.session.kind === 'ssh' ? ' (where this session comes from)' : ''}`,
    ok: !problem,
    ...(problem ? { detail: problem } : {}),
  });
  // A Match block for the admin's connection can undo any global value (ours applies there when `from` is in root's networks).
  const inOurMatch = answers.root_login === 'networks' && (answers.root_networks ?? []).some((n) => addressMatches(n, from));
  const forAdminDiffs = compareIntent(settings, forAdmin.effective, inOurMatch ? 'match' : 'global');
  const reported = new Set(globalDiffs.map((d) => d.keyword));
  checks.push(...(await differences(ctx, settings, forAdminDiffs.filter((d) => !reported.has(d.keyword)))));

  const network = answers.root_login === 'networks' ? answers.root_networks?.[0] : undefined;
  if (network !== undefined) {
    const rootFrom = hostIn(network);
    const forRoot = await readEffective(ctx.exec, { user: 'root', addr: rootFrom });
    const diffs = forRoot.ok ? compareIntent(settings, forRoot.effective, 'match').filter((d) => d.keyword === 'permitrootlogin') : [];
    checks.push({
      label: `root from ${network} logs in with a key only (cluster SSH)`,
      ok: forRoot.ok && diffs.length === 0,
      ...(forRoot.ok ? (diffs.length ? { detail: `sshd -T -C user=root,addr=${rootFrom} shows PermitRootLogin ${diffs[0]!.actual}` } : {}) : { detail: forRoot.error }),
    });
  }
  return checks;
}

function expected(settings: SshdSetting[]): ExpectedAlgorithms {
  const list = (k: string) => settings.find((s) => s.keyword === k && !s.match)?.value.split(',') ?? [];
  return { kex: list('KexAlgorithms'), ciphers: list('Ciphers'), macs: list('MACs'), hostKeys: list('HostKeyAlgorithms') };
}

export const sshdHardeningStep: Step<SshdFacts, SshdAnswers> = {
  id: 'sshd-hardening',
  title: 'SSH server hardening',
  summary: 'Keys only, no passwords, root key-only, an allow list and modern crypto; kept only once you log in again from a new session.',
  scope: 'node',
  risk: 'lockout',
  dependsOn: ['admin-account', 'ssh-key'],

  questions: [
    ask.select({
      id: 'root_login',
      prompt: 'How may root log in over SSH?',
      help: 'Proxmox clusters need root SSH between nodes (migration, replication, pvecm). Passwords are refused either way.',
      choices: [
        { value: 'prohibit-password', label: ROOT_FROM_ANYWHERE, hint: 'Proxmox default for clusters' },
        { value: 'networks', label: 'With a key only, from the cluster and management networks', hint: 'PermitRootLogin no, with a Match Address' },
      ],
      detect: () => 'prohibit-password',
    }),
    ask.cidrs({
      id: 'root_networks',
      prompt: 'Networks root may log in from (with a key)',
      help: 'The cluster and management networks, separated by spaces, e.g. 10.0.0.0/24 10.10.10.0/24. Every cluster node must be inside one.',
      when: (answers) => answers.root_login === 'networks',
      detect: (facts) => (facts.networks.length ? facts.networks : undefined),
      maxNetworks: 64,
      everything: `to let root in from anywhere, choose "${ROOT_FROM_ANYWHERE}" (root_login: prohibit-password) instead`,
    }),
    ask.select({
      id: 'allow_mode',
      prompt: 'Who may log in over SSH at all?',
      help: 'Everyone else is refused before authentication. The admin and root (cluster SSH) are always kept.',
      choices: [
        { value: 'users', label: 'Named accounts (AllowUsers)', hint: 'the admin, root, and any you add' },
        { value: 'groups', label: 'Members of groups (AllowGroups)', hint: 'e.g. sudo; group root is added for cluster SSH' },
      ],
      detect: () => 'users',
    }),
    ask.words({
      id: 'allow_users',
      optional: true,
      prompt: 'Other accounts that may log in (besides the admin and root)',
      help: 'Separated by spaces; leave empty for none.',
      when: (answers) => answers.allow_mode !== 'groups',
      what: 'a user name',
      pattern: ACCOUNT_NAME,
      maxWordLength: NAME_MAX,
      maxWords: 64,
    }),
    ask.words({
      id: 'allow_groups',
      prompt: 'Groups whose members may log in',
      help: 'Separated by spaces. The admin must be a member of one of them, or the plan is refused.',
      when: (answers) => answers.allow_mode === 'groups',
      detect: () => ['sudo'],
      what: 'a group name',
      pattern: ACCOUNT_NAME,
      maxWordLength: NAME_MAX,
      maxWords: 64,
      check: async (value, _answers, ctx) => {
        const groups = (await readAccounts(ctx.files)).groups.map((g) => g.name);
        const unknown = value.filter((g) => !groups.includes(g));
        return unknown.length ? `no such group on this node: ${unknown.join(', ')}` : undefined;
      },
    }),
    ask.select({
      id: 'profile',
      prompt: 'Crypto profile',
      help: `compatible passes ssh-audit's hardened policy and works with every maintained client. ${STRICT_CLIENT_CAVEATS}`,
      choices: [
        { value: 'compatible', label: 'Compatible', hint: 'post-quantum first, curve25519 kept' },
        { value: 'strict', label: 'Strict', hint: 'post-quantum key exchange only; older clients cannot connect' },
      ],
      detect: () => 'compatible',
    }),
    ask.revertWindow({
      id: 'revert_seconds',
      prompt: 'Seconds you have to log in again before the node reverts the change',
      help: 'The node puts the old settings back by itself unless you prove access in time, even if this session drops or the node reboots.',
    }),
  ],

  requires: (node) => (node.proxmox ? undefined : 'needs a Proxmox VE node'),
  notApplicable: (facts) => (facts.admin ? undefined : 'the admin account does not exist yet'),

  async probe(ctx) {
    const { accounts, admin } = await findAdmin(ctx);
    const keysText = admin ? ((await ctx.files.read(admin.authorizedKeys)) ?? '') : '';
    const ipv4 = ctx.node.addresses.filter((a) => a.family === 'IPv4');
    return {
      admin,
      accounts,
      adminKeys: readCheckedKeys(withoutProbeKey(keysText)),
      supported: await readSupported(ctx.exec),
      dropIn: await ctx.files.read(DROP_IN),
      networks: [...new Set(ipv4.map((a) => networkOf(a.cidr)))],
      nodeAddress: ipv4[0]?.address,
    };
  },

  plan(facts, answers) {
    const { settings, content } = settingsOf(facts, answers);
    if (facts.dropIn === content) return [];
    const changes: Change[] = [
      { kind: 'file', path: DROP_IN, before: facts.dropIn, after: content, mode: 0o644, owner: { uid: 0, gid: 0 }, reason: dropInDrift(facts.dropIn, settings, content) },
      { kind: 'service', unit: 'ssh', action: 'reload', reason: 'sshd reads the new settings; open sessions (this one too) stay connected' },
    ];
    return changes;
  },

  preflight(facts, answers) {
    const admin = facts.admin!;
    const intent = intentOf(facts, answers);
    const crypto = cryptoLists(intent.profile, facts.supported);
    if (!crypto.ok) return [{ label: `the ${intent.profile} profile works with this OpenSSH`, ok: false, detail: crypto.reason }];
    const { settings } = settingsOf(facts, answers);
    const checks: Check[] = [];
    const keysFile = `${admin.home}/.ssh/authorized_keys`;
    const accepted = facts.adminKeys.filter((k) => !keyRefusal(k, settings));
    checks.push({
      label: `${admin.name} has an installed key the ${intent.profile} profile accepts`,
      ok: accepted.length > 0,
      detail: !facts.adminKeys.length
        ? `${keysFile} holds no key: run the SSH key step first`
        : accepted.length
          ? accepted.map(describeKey).join('; ')
          : `${facts.adminKeys.map((k) => `${describeKey(k)}: ${keyRefusal(k, settings)}`).join('; ')}. Install an ed25519 key (the SSH key step), or choose the compatible profile`,
    });
    if (intent.allow.mode === 'groups') {
      const mine = groupsOf(facts.accounts, admin);
      const inAllowed = intent.allow.names.some((g) => mine.includes(g));
      checks.push({
        label: `AllowGroups ${intent.allow.names.join(' ')} keeps ${admin.name}`,
        ok: inAllowed,
        ...(inAllowed ? {} : { detail: `${admin.name} is a member of ${mine.join(', ') || 'no group'}, none of which is allowed: add one of them, or add ${admin.name} to an allowed group first` }),
      });
    }
    return checks;
  },

  document: (ctx) => sshPolicyDocument(ctx),

  async verify(ctx, answers) {
    const facts = await this.probe(ctx);
    if (!facts.admin) return [{ label: 'the admin account exists', ok: false }];
    const { settings, content } = settingsOf(facts, answers);
    const checks: Check[] = [{ label: `${DROP_IN} holds the intended settings`, ok: facts.dropIn === content, ...(facts.dropIn === content ? {} : { detail: dropInDrift(facts.dropIn, settings, content) }) }];
    return [...checks, ...(await effectiveChecks(ctx, facts, answers, settings))];
  },

  guard: {
    reload: [['systemctl', 'reload', 'ssh']],
    // A run killed during the proof leaves the probe line (usable only from the node, only for /bin/true) and,
    // during the OpenSSH probe, its private key: the revert removes both. The admin's own file is edited as the
    // admin (setpriv), so no link planted in their ~/.ssh can lead root's sed anywhere.
    cleanup: (facts) => [
      ...(facts.admin
        ? [['setpriv', `--reuid=${facts.admin.uid}`, `--regid=${facts.admin.gid}`, '--clear-groups', '--', 'sed', '-i', '-e', `/ ${PROBE_COMMENT}$/d`, `${facts.admin.home}/.ssh/authorized_keys`]]
        : []),
      ['rm', '-rf', '--', probeKeyDir()],
    ],
    seconds: (answers) => answers.revert_seconds,

    async beforeActivate(ctx, answers, facts) {
      const test = await ctx.exec.run([SSHD, '-t']);
      if (test.exitCode !== 0) {
        const said = (test.stderr || test.stdout).replace(/\r/g, '').trim().split('\n').join('; ');
        return [{ label: 'sshd -t accepts the configuration', ok: false, detail: `${said || `exit ${test.exitCode}`}; nothing was reloaded` }];
      }
      const { settings } = settingsOf(facts, answers);
      return [{ label: 'sshd -t accepts the configuration', ok: true }, ...(await effectiveChecks(ctx, facts, answers, settings))];
    },

    async prove(ctx, answers, facts) {
      const admin = facts.admin!;
      const host = facts.nodeAddress;
      if (!host) return [{ label: 'the node has an address to log in to', ok: false, detail: 'no IPv4 address outside loopback' }];
      const { settings } = settingsOf(facts, answers);
      const keysFile = `${admin.home}/.ssh/authorized_keys`;
      const key = await makeProbeKey();
      const before = (await ctx.files.read(keysFile)) ?? '';
      const base = withoutProbeKey(before);
      // Usable only from the node's own address, only to run /bin/true; removed again below whatever happens.
      const withProbe = `${base}${base === '' || base.endsWith('\n') ? '' : '\n'}${probeKeyLine(key.publicKey, host)}\n`;
      await ctx.files.write(keysFile, withProbe);
      try {
        const target = { host, admin: admin.name, privateKey: key.privateKey, expect: expected(settings) };
        let result = await probe(target);
        if (result.outcome === 'ssh2-cannot-negotiate') {
          ctx.log(result.reason ?? 'ssh2 cannot negotiate; using the OpenSSH client');
          result = await probeWithOpenSsh(ctx.exec, target);
        }
        if (result.outcome !== 'done') return [{ label: `${admin.name} logs in with a key at ${host}`, ok: false, detail: result.reason ?? result.outcome }];
        return result.checks.map((c) => ({ ...c, label: `probe: ${c.label}` }));
      } finally {
        // Byte for byte as it was, unless someone changed the file meanwhile: then only the probe line goes.
        const now = (await ctx.files.read(keysFile)) ?? '';
        await ctx.files.write(keysFile, now === withProbe ? base : withoutProbeKey(now));
      }
    },

    access(ctx, answers, facts) {
      const admin = facts.admin!;
      const address = ctx.node.session.kind === 'ssh' ? ctx.node.session.serverAddress : (facts.nodeAddress ?? ctx.node.hostname);
      const fingerprints = facts.adminKeys.map((k) => k.fingerprint);
      return {
        instructions: ['Keep this session open. In a new terminal, log in with your key:', `ssh ${admin.name}@${address}`],
        watch: async (since, signal) => {
          const login = await watchForLogin(ctx.exec, { user: admin.name, fingerprints, since, timeoutMs: 24 * 3600_000, signal });
          return login ? { detail: describeLogin(login), user: login.user, from: login.address, fingerprint: login.fingerprint } : null;
        },
      };
    },
  },
};

/** The sshd settings the document shows, in reading order, with what each means. */
const POLICY_KEYWORDS: [keyword: string, meaning: string][] = [
  ['permitrootlogin', 'root logins'],
  ['passwordauthentication', 'passwords accepted'],
  ['kbdinteractiveauthentication', 'keyboard-interactive (PAM prompts)'],
  ['pubkeyauthentication', 'public keys accepted'],
  ['authenticationmethods', 'methods required'],
  ['allowusers', 'only these users'],
  ['allowgroups', 'only these groups'],
  ['maxauthtries', 'attempts per connection'],
  ['logingracetime', 'seconds to log in'],
  ['clientaliveinterval', 'idle check every (s)'],
  ['clientalivecountmax', 'unanswered checks before a drop'],
  ['loglevel', 'log detail (VERBOSE records key fingerprints)'],
  ['x11forwarding', 'X11 forwarding'],
  ['allowagentforwarding', 'agent forwarding'],
  ['permituserenvironment', 'user environment files'],
  ['kexalgorithms', 'key exchange'],
  ['ciphers', 'ciphers'],
  ['macs', 'MACs'],
  ['hostkeyalgorithms', 'host key algorithms'],
  ['pubkeyacceptedalgorithms', 'accepted user key algorithms'],
];

const ROOT_LOGIN_MEANING: Record<string, string> = {
  yes: 'root may log in over SSH with a password or a key. This is the fresh-install setting; the sshd step restricts it.',
  'prohibit-password': 'root may log in over SSH with a key only, never with a password.',
  'without-password': 'root may log in over SSH with a key only, never with a password.',
  no: 'root may not log in over SSH (a Match block may still allow keys from the cluster and management networks).',
  'forced-commands-only': 'root may log in with a key only to run its forced command.',
};

/**
 * The SSH part of the access-policy document: what sshd enforces now
 * (`sshd -T`, whatever file set it), what that means for root, and where the
 * baseline's settings live.
 */
export async function sshPolicyDocument(ctx: StepContext): Promise<DocumentSection> {
  const effective = await readEffective(ctx.exec);
  const dropIn = await ctx.files.read(DROP_IN);
  const value = (keyword: string) => (effective.ok ? effective.effective.get(keyword)?.join(' ') : undefined);
  const root = value('permitrootlogin') ?? 'unknown';
  return {
    heading: 'SSH policy',
    blocks: [
      bullets([
        `Root over SSH: ${code(`PermitRootLogin ${root}`)}: ${ROOT_LOGIN_MEANING[root] ?? 'see the settings below.'}`,
        'root@pam stays enabled in Proxmox VE: some operations (updates from the web UI, cluster joins) need it. It is for provisioning and emergencies, not daily work.',
        'Proxmox clusters use root SSH between nodes (migration, `pvecm`): root keeps key-only access from the cluster and management networks.',
        'SSH logins are in the journal (`journalctl -u ssh`); with `LogLevel VERBOSE` each records the key fingerprint used.',
      ]),
      paragraph(
        dropIn === null
          ? `pve-baseline has not hardened sshd on this node (no ${code(DROP_IN)}): the values below are Debian's and Proxmox VE's defaults.`
          : `The baseline's settings are in ${code(DROP_IN)}, read before every other file; the values below are what sshd enforces, whichever file set them.`,
      ),
      effective.ok
        ? table(['Setting', 'Meaning', 'In force (`sshd -T`)'], POLICY_KEYWORDS.map(([k, meaning]) => [`\`${k}\``, meaning, value(k) ?? '(not set)']))
        : paragraph(`\`sshd -T\` could not be read: ${code(effective.error)}`),
    ],
    evidence: ['sshd -T', `read ${DROP_IN}`],
  };
}
