/**
 * The operator's SSH key for the admin account (seeds 000 and 001: "ssh-copy-id
 * admin@node"), checked and shown (type, size, SHA256 fingerprint, comment)
 * before it is installed in ~NAME/.ssh/authorized_keys with the modes sshd
 * insists on (0700 and 0600, owned by the admin). Optionally also for root,
 * whose file on Proxmox is /etc/pve/priv/authorized_keys, shared by every
 * node of a cluster.
 */
import type { Change } from '../src/engine/change.ts';
import type { AnswerDetails, Check, QuestionContext, Step } from '../src/engine/step.ts';
import { readAccounts, type PasswdEntry } from '../src/system/accounts.ts';
import { authorizedKeysLine, checkPublicKeys, readCheckedKeys, type PublicKey } from '../src/ssh/keys.ts';

export const ROOT_KEYS = '/root/.ssh/authorized_keys';
export const ROOT_KEYS_CLUSTER_FILE = '/etc/pve/priv/authorized_keys';

interface KeyFacts {
  admin: PasswdEntry | undefined;
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
    const text = await files.read(value);
    return text === null ? { error: `no file ${value} on this node; paste the key, or give the path of a .pub file here` } : { text, source: value };
  }
  return { text: value, source: 'pasted' };
}


function hasOptions(text: unknown): boolean {
  // A line whose first word is not a key type but whose second is: options precede the key.
  return /^(?!ssh-|ecdsa-|sk-)\S+\s+(ssh-|ecdsa-|sk-)/m.test(String(text ?? ''));
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

/** The file with the keys appended, each on its own line. */
function appendKeys(content: string | null, keys: PublicKey[], keepOptions: boolean): string {
  const base = content === null || content === '' || content.endsWith('\n') ? (content ?? '') : `${content}\n`;
  return base + keys.map((k) => `${authorizedKeysLine(k, keepOptions)}\n`).join('');
}

export const sshKeyStep: Step<KeyFacts> = {
  id: 'ssh-key',
  title: 'Your SSH key for the admin account',
  summary: 'Installs your public key for the admin, shown with its fingerprint first; keys are what the sshd step will require.',
  scope: 'node',
  risk: 'safe',
  dependsOn: ['admin-account'],

  questions: [
    {
      id: 'keys',
      kind: 'text',
      multiline: true,
      prompt: 'Your public key(s)',
      help: 'Paste one or more public keys (one per line), or give the path of a .pub file on this node, or type root to reuse the keys root already accepts.',
      detect: (facts) => (facts.rootKeys && facts.rootKeys.split('\n').filter((l) => l.trim()).length > 1 ? 'root' : undefined),
      // What is kept is the keys themselves (public), whichever way they were given.
      resolve: async (value, ctx) => {
        const resolved = await resolveKeyText(value, ctx.files);
        return 'error' in resolved ? { problem: resolved.error } : resolved.text;
      },
      validate: async (value) => {
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
    },
    {
      id: 'keep_options',
      kind: 'confirm',
      prompt: 'Keep the authorized_keys options written before a key (from=, command=, ...)?',
      help: 'Options restrict what a key may do. Keep them only if you put them there on purpose; no drops them and installs the bare key.',
      when: (answers) => hasOptions(answers.keys),
    },
    {
      id: 'also_root',
      kind: 'confirm',
      prompt: 'Also let this key log in as root?',
      help: `On Proxmox, root's authorized_keys is ${ROOT_KEYS_CLUSTER_FILE}, shared by every node of a cluster: a key added there opens root on all of them. Usually no: log in as the admin and use sudo.`,
      detect: () => false,
    },
  ],

  async probe(ctx) {
    const admin = (await readAccounts(ctx.files)).users.find((u) => u.name === ctx.answersOf('admin-account').name);
    const sshDir = admin ? await ctx.files.meta(`${admin.home}/.ssh`) : null;
    const keysFile = admin ? `${admin.home}/.ssh/authorized_keys` : null;
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
    const keys = readCheckedKeys(String(answers.keys));
    const keep = answers.keep_options === true;
    const changes: Change[] = [];
    const dir = `${admin.home}/.ssh`;
    const file = `${dir}/authorized_keys`;
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
    if (forAdmin.length) {
      changes.push({
        kind: 'file',
        path: file,
        before: facts.authorizedKeys,
        after: appendKeys(facts.authorizedKeys, forAdmin, keep),
        mode: 0o600,
        owner: { uid: admin.uid, gid: admin.gid },
        reason: `lets ${forAdmin.map((k) => k.fingerprint).join(', ')} log in as ${admin.name}`,
      });
    }
    if (facts.authorizedKeysMeta) changes.push(...fixOwnership(file, facts.authorizedKeysMeta, 0o600, admin));
    const forRoot = answers.also_root === true ? keysToAdd(facts.rootKeys, keys) : [];
    if (forRoot.length) {
      changes.push({
        kind: 'file',
        path: ROOT_KEYS,
        before: facts.rootKeys,
        after: appendKeys(facts.rootKeys, forRoot, keep),
        mode: 0o600,
        reason: `root's keys live in ${ROOT_KEYS_CLUSTER_FILE} (the symlink is kept): every node of a cluster will accept this key for root`,
      });
    }
    return changes;
  },

  async verify(ctx, answers) {
    const facts = await this.probe(ctx);
    const admin = facts.admin;
    if (!admin) return [{ label: 'the admin account exists', ok: false }];
    const keys = readCheckedKeys(String(answers.keys));
    const checks: Check[] = keys.map((k) => ({ label: `${k.fingerprint} is in ${admin.home}/.ssh/authorized_keys`, ok: (facts.authorizedKeys ?? '').includes(k.base64) }));
    const mode = (m: KeyFacts['sshDir']) => (m ? `${m.mode.toString(8)} ${m.uid}:${m.gid}` : 'missing');
    checks.push(
      { label: `${admin.home}/.ssh is 0700 and ${admin.name}'s`, ok: modeOk(facts.sshDir, 0o700, admin), detail: mode(facts.sshDir) },
      { label: 'authorized_keys is 0600 and the admin\'s', ok: modeOk(facts.authorizedKeysMeta, 0o600, admin), detail: mode(facts.authorizedKeysMeta) },
    );
    if (answers.also_root === true) checks.push(...keys.map((k) => ({ label: `${k.fingerprint} is in root's ${ROOT_KEYS_CLUSTER_FILE}`, ok: (facts.rootKeys ?? '').includes(k.base64) })));
    return checks;
  },
};

