/**
 * The operator's SSH key for the admin account (what hardening guides do with
 * "ssh-copy-id admin@node"), checked and shown (type, size, SHA256 fingerprint, comment)
 * before it is installed in ~NAME/.ssh/authorized_keys with the modes sshd
 * insists on (0700 and 0600, owned by the admin). Optionally also for root,
 * whose file on Proxmox is /etc/pve/priv/authorized_keys, shared by every
 * node of a cluster.
 */
import type { Change } from '../src/engine/change.ts';
import type { AnswerDetails, Check, QuestionContext, Step, StepContext } from '../src/engine/step.ts';
import { ask } from '../src/engine/questions.ts';
import { findAccount, type AccountHome, type PasswdEntry } from '../src/system/accounts.ts';
import { FileRefusedError, readRegularFile } from '../src/system/files.ts';
import { authorizedKeysLine, checkPublicKeys, readCheckedKeys, splitAuthorizedKeysLine, type PublicKey } from '../src/ssh/keys.ts';
import { code, paragraph, table, type DocumentSection } from '../src/report/section.ts';
import { adminAccountStep, findAdmin } from './admin-account.ts';

export const ROOT_KEYS = '/root/.ssh/authorized_keys';
export const ROOT_KEYS_CLUSTER_FILE = '/etc/pve/priv/authorized_keys';
/** A file of public keys is a few lines; anything larger is not one. */
const KEY_FILE_MAX_BYTES = 256 * 1024;

interface KeyFacts {
  admin: AccountHome | undefined;
  sshDir: { mode: number; uid: number; gid: number } | null;
  authorizedKeys: string | null;
  authorizedKeysMeta: { mode: number; uid: number; gid: number } | null;
  rootKeys: string | null;
}

/** "root" means: the keys root already accepts, minus the node's own key (Proxmox adds root's id_rsa.pub). */
async function resolveKeyText(value: string, files: QuestionContext['files']): Promise<{ text: string; source: string } | { error: string }> {
  if (value === 'root') {
    const own = ((await files.read('/root/.ssh/id_rsa.pub')) ?? '').trim().split(/\s+/)[1];
    const lines = ((await files.read(ROOT_KEYS)) ?? '').split('\n').filter((l) => l.trim() && (!own || !l.includes(own)));
    return lines.length ? { text: lines.join('\n'), source: `root's ${ROOT_KEYS}` } : { error: `root has no keys of its own in ${ROOT_KEYS} (only the node's own key); paste yours instead` };
  }
  if (/^\/\S+$/.test(value)) {
    // Read as root from a path anyone may name: a regular file only, never through a link, at most KEY_FILE_MAX_BYTES.
    let bytes: Buffer;
    try {
      bytes = await readRegularFile(value, { maxBytes: KEY_FILE_MAX_BYTES, what: 'the key file' });
    } catch (error) {
      if (!(error instanceof FileRefusedError)) throw error;
      if (error.reason === 'no such file') return { error: `no file ${value} on this node; paste the key, or give the path of a .pub file here` };
      return { error: `${error.message}; paste the key, or give the path of a .pub file here` };
    }
    try {
      // Strict decoding: a file that is not UTF-8 is not a public key file, and replacement characters would hide that.
      return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), source: value };
    } catch {
      return { error: `the key file ${value} is not UTF-8 text; give the path of a .pub file, or paste the key` };
    }
  }
  return { text: value, source: 'pasted' };
}

/** Some key has authorized_keys options, found as sshd finds them (quoted values may hold spaces). */
function hasOptions(text: unknown): boolean {
  return readCheckedKeys(String(text ?? '')).some((k) => k.options !== null);
}

type Meta = KeyFacts['sshDir'];

const modeOk = (meta: Meta, mode: number, admin: PasswdEntry) => !!meta && meta.mode === mode && meta.uid === admin.uid && meta.gid === admin.gid;

/** chmod/chown so sshd accepts the path (it ignores keys others could have written), each undoable. */
function fixOwnership(path: string, meta: NonNullable<Meta>, mode: number, admin: PasswdEntry): Change[] {
  const octal = (m: number) => m.toString(8).padStart(4, '0');
  const changes: Change[] = [];
  if (meta.mode !== mode) {
    changes.push({ kind: 'command', argv: ['chmod', octal(mode), path], undo: ['chmod', octal(meta.mode), path], reason: `${path} is mode ${octal(meta.mode)}; sshd wants ${octal(mode)}` });
  }
  if (meta.uid !== admin.uid || meta.gid !== admin.gid) {
    changes.push({ kind: 'command', argv: ['chown', `${admin.uid}:${admin.gid}`, path], undo: ['chown', `${meta.uid}:${meta.gid}`, path], reason: `${path} must belong to ${admin.name}` });
  }
  return changes;
}

/** The keys a file does not hold yet. */
const keysToAdd = (content: string | null, keys: PublicKey[]) => keys.filter((k) => !(content ?? '').includes(k.base64));

/** Says which keys lose their options (keep_options: no), so the plan never hides a dropped restriction. */
function optionsNote(keys: PublicKey[], keep: boolean): string {
  const withOptions = keys.filter((k) => k.options !== null);
  if (!withOptions.length) return '';
  const list = withOptions.map((k) => `${k.fingerprint} (${k.options})`).join(', ');
  return keep ? `, with its options as given: ${list}` : `; the options are DROPPED (keep_options: no), so these keys are unrestricted: ${list}`;
}

/**
 * The file with each key that is already there but without the options
 * asked for (keep_options: yes) written again with them, so a bare line
 * installed earlier does not stay unrestricted. Without keep_options, lines
 * already there are left as they are: options are never removed from them.
 */
function withOptionsRestored(content: string | null, keys: PublicKey[], keep: boolean): { text: string | null; restored: PublicKey[] } {
  if (content === null || !keep) return { text: content, restored: [] };
  const restored: PublicKey[] = [];
  const lines = content.split('\n').map((line) => {
    const split = line.trim() && !line.trim().startsWith('#') ? splitAuthorizedKeysLine(line.trim()) : null;
    if (!split || 'problem' in split) return line;
    const base64 = split.rest.split(/[ \t]+/)[1];
    const key = keys.find((k) => k.options !== null && k.base64 === base64);
    if (!key || split.options === key.options) return line;
    if (!restored.includes(key)) restored.push(key);
    return authorizedKeysLine(key, true);
  });
  return { text: lines.join('\n'), restored };
}

/** The file with the keys appended, each on its own line. */
function appendKeys(content: string | null, keys: PublicKey[], keepOptions: boolean): string {
  const base = content === null || content === '' || content.endsWith('\n') ? (content ?? '') : `${content}\n`;
  return base + keys.map((k) => `${authorizedKeysLine(k, keepOptions)}\n`).join('');
}

/** What the step is told: the keys themselves (public), whichever way they were given. */
export type SshKeyAnswers = {
  keys: string;
  /** Asked only when a key has options. */
  keep_options?: boolean;
  also_root: boolean;
};

export const sshKeyStep: Step<KeyFacts, SshKeyAnswers> = {
  id: 'ssh-key',
  title: 'Your SSH key for the admin account',
  summary: 'Installs your public key for the admin, shown with its fingerprint first; keys are what the sshd step will require.',
  scope: 'node',
  risk: 'safe',
  dependsOn: ['admin-account'],

  questions: [
    ask.text({
      id: 'keys',
      multiline: true,
      maxLength: KEY_FILE_MAX_BYTES,
      prompt: 'Your public key(s)',
      help: 'Paste one or more public keys (one per line), or give the path of a .pub file on this node, or type root to reuse the keys root already accepts.',
      detect: (facts) => (facts.rootKeys && facts.rootKeys.split('\n').filter((l) => l.trim()).length > 1 ? 'root' : undefined),
      // What is kept is the keys themselves (public), whichever way they were given.
      resolve: async (value, ctx) => {
        const resolved = await resolveKeyText(value, ctx.files);
        return 'error' in resolved ? { problem: resolved.error } : resolved.text;
      },
      check: async (value) => {
        const checked = await checkPublicKeys(value);
        return checked.problems.length ? checked.problems.join('; ') : undefined;
      },
      details: async (value): Promise<AnswerDetails> => {
        const result = await checkPublicKeys(value);
        return {
          title: `${result.keys.length === 1 ? 'This key' : `These ${result.keys.length} keys`} will let you log in as the admin:`,
          items: result.keys.map((k, i) => ({
            heading: `Key ${i + 1}`,
            fields: [
              ['Type', k.type],
              ['Size', `${k.bits} bits`],
              ['Fingerprint', k.fingerprint],
              ['Comment', k.comment || '(none)'],
              ...(k.options ? ([['Options', k.options]] as [string, string][]) : []),
            ],
            ...(result.warnings.find((w) => w.startsWith(`line ${k.line}:`)) ? { warning: result.warnings.find((w) => w.startsWith(`line ${k.line}:`))! } : {}),
          })),
        };
      },
    }),
    ask.yesNo({
      id: 'keep_options',
      prompt: 'Keep the authorized_keys options written before a key (from=, command=, ...)?',
      help: 'Options restrict what a key may do. Keep them only if you put them there on purpose; no drops them and installs the bare key.',
      when: (answers) => hasOptions(answers.keys),
    }),
    ask.yesNo({
      id: 'also_root',
      prompt: 'Also let this key log in as root?',
      help: `On Proxmox, root's authorized_keys is ${ROOT_KEYS_CLUSTER_FILE}, shared by every node of a cluster: a key added there opens root on all of them. Usually no: log in as the admin and use sudo.`,
      detect: () => false,
    }),
  ],

  async probe(ctx) {
    const { admin } = await findAdmin(ctx);
    const sshDir = admin ? await ctx.files.meta(admin.sshDir) : null;
    const keysFile = admin ? admin.authorizedKeys : null;
    const keysMeta = keysFile ? await ctx.files.meta(keysFile) : null;
    return {
      admin,
      sshDir: sshDir && { mode: sshDir.mode, uid: sshDir.uid, gid: sshDir.gid },
      authorizedKeys: keysFile ? await ctx.files.read(keysFile) : null,
      authorizedKeysMeta: keysMeta && { mode: keysMeta.mode, uid: keysMeta.uid, gid: keysMeta.gid },
      rootKeys: await ctx.files.read(ROOT_KEYS),
    };
  },

  requires: (node) => (node.proxmox ? undefined : 'needs a Proxmox VE node'),
  notApplicable: (facts) => (facts.admin ? undefined : 'the admin account does not exist yet'),

  plan(facts, answers) {
    const admin = facts.admin!;
    const keys = readCheckedKeys(answers.keys);
    const keep = answers.keep_options === true;
    const changes: Change[] = [];
    const dir = admin.sshDir;
    const file = admin.authorizedKeys;
    if (!facts.sshDir) {
      changes.push({
        kind: 'command',
        argv: ['install', '-d', '-m', '0700', '-o', String(admin.uid), '-g', String(admin.gid), dir],
        undo: ['rmdir', dir],
        reason: 'sshd ignores keys in a directory others can write to: 0700, owned by the admin',
      });
    } else {
      changes.push(...fixOwnership(dir, facts.sshDir, 0o700, admin));
    }
    const forAdmin = keysToAdd(facts.authorizedKeys, keys);
    const adminFile = withOptionsRestored(facts.authorizedKeys, keys, keep);
    if (forAdmin.length || adminFile.restored.length) {
      const added = forAdmin.length ? `lets ${forAdmin.map((k) => k.fingerprint).join(', ')} log in as ${admin.name}${optionsNote(forAdmin, keep)}` : '';
      const restored = adminFile.restored.length ? `writes the options asked for again on ${adminFile.restored.map((k) => `${k.fingerprint} (${k.options})`).join(', ')}, installed without them` : '';
      changes.push({
        kind: 'file',
        path: file,
        before: facts.authorizedKeys,
        after: appendKeys(adminFile.text, forAdmin, keep),
        mode: 0o600,
        owner: { uid: admin.uid, gid: admin.gid },
        reason: [added, restored].filter(Boolean).join('; '),
      });
    }
    if (facts.authorizedKeysMeta) changes.push(...fixOwnership(file, facts.authorizedKeysMeta, 0o600, admin));
    const forRoot = answers.also_root === true ? keysToAdd(facts.rootKeys, keys) : [];
    const rootFile = withOptionsRestored(facts.rootKeys, answers.also_root === true ? keys : [], keep);
    if (forRoot.length || rootFile.restored.length) {
      changes.push({
        kind: 'file',
        path: ROOT_KEYS,
        before: facts.rootKeys,
        after: appendKeys(rootFile.text, forRoot, keep),
        mode: 0o600,
        reason: `root's keys live in ${ROOT_KEYS_CLUSTER_FILE} (the symlink is kept): every node of a cluster will accept this key for root${optionsNote(forRoot, keep)}`,
      });
    }
    return changes;
  },

  document: (ctx) => sshKeysDocument(ctx, ctx.answersOf(adminAccountStep).name),

  async verify(ctx, answers) {
    const facts = await this.probe(ctx);
    const admin = facts.admin;
    if (!admin) return [{ label: 'the admin account exists', ok: false }];
    const keys = readCheckedKeys(answers.keys);
    const checks: Check[] = keys.map((k) => ({ label: `${k.fingerprint} is in ${admin.authorizedKeys}`, ok: (facts.authorizedKeys ?? '').includes(k.base64) }));
    if (answers.keep_options === true) {
      const installed = readCheckedKeys(facts.authorizedKeys ?? '');
      for (const k of keys.filter((key) => key.options !== null)) {
        const line = installed.find((i) => i.base64 === k.base64);
        checks.push({ label: `${k.fingerprint} has the options asked for`, ok: line?.options === k.options, detail: line?.options ?? 'no options' });
      }
    }
    const mode = (m: KeyFacts['sshDir']) => (m ? `${m.mode.toString(8)} ${m.uid}:${m.gid}` : 'missing');
    checks.push(
      { label: `${admin.home}/.ssh is 0700 and ${admin.name}'s`, ok: modeOk(facts.sshDir, 0o700, admin), detail: mode(facts.sshDir) },
      { label: 'authorized_keys is 0600 and the admin\'s', ok: modeOk(facts.authorizedKeysMeta, 0o600, admin), detail: mode(facts.authorizedKeysMeta) },
    );
    if (answers.also_root === true) checks.push(...keys.map((k) => ({ label: `${k.fingerprint} is in root's ${ROOT_KEYS_CLUSTER_FILE}`, ok: (facts.rootKeys ?? '').includes(k.base64) })));
    return checks;
  },
};

/**
 * The keys' part of the access-policy document: every key that logs in as
 * the admin or as root, by fingerprint, with the options that restrict it.
 * Public keys only: pve-baseline never sees a private key.
 */
export async function sshKeysDocument(ctx: StepContext, adminName: string | undefined): Promise<DocumentSection> {
  const { account: admin } = await findAccount(ctx.files, adminName);
  const files: { account: string; path: string }[] = [
    ...(admin ? [{ account: admin.name, path: admin.authorizedKeys }] : []),
    { account: 'root', path: ROOT_KEYS },
  ];
  const rows: string[][] = [];
  const unread: string[] = [];
  for (const { account, path } of files) {
    const text = (await ctx.files.read(path)) ?? '';
    const keys = readCheckedKeys(text);
    for (const k of keys) rows.push([account, `${k.type} (${k.bits} bits)`, k.fingerprint, k.comment, k.options ?? 'none: unrestricted']);
    const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#')).length;
    // Lines that are not keys pve-baseline accepts (damaged, refused types, options sshd rejects) are counted, not guessed at.
    if (lines > keys.length) unread.push(`${lines - keys.length} line(s) of ${code(path)} are not keys pve-baseline accepts (damaged, a refused type, options sshd rejects, or a repeated key); see the file itself.`);
  }
  return {
    heading: 'SSH keys',
    blocks: [
      paragraph('The keys that log in over SSH, by the fingerprint `ssh-keygen -l` and sshd\'s log print. Options restrict what a key may do (from where, which command).'),
      rows.length ? table(['Account', 'Key', 'Fingerprint', 'Comment', 'Options'], rows) : paragraph('No SSH keys are installed for the admin or root.'),
      ...unread.map(paragraph),
      paragraph(`Root's authorized keys are ${code(ROOT_KEYS_CLUSTER_FILE)} (${code(ROOT_KEYS)} links there), shared by every node of a cluster: a key there opens root on all of them.`),
    ],
    evidence: [...files.map((f) => `read ${f.path}`)],
  };
}
