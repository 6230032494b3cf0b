/**
 * An example of a step that can cut access and goes live the moment its file
 * is written, written only for the tests: nothing in src/ or steps/ knows it.
 * It shows that such a step is one file, with the engine untouched.
 *
 * The "gatekeeper" is a small daemon in the lab node (a systemd path unit and
 * a oneshot service, see install.sh beside this file): whenever
 * /etc/gatekeeper/allow changes it turns the names listed there into sshd's
 * AllowUsers and reloads sshd. So writing the file IS activating it, the way
 * the Proxmox firewall applies /etc/pve/firewall/*.fw by itself: a list
 * without the operator's account shuts the operator out within a second.
 */
import type { Change } from '../../../src/engine/change.ts';
import type { Answers, Check, Step } from '../../../src/engine/step.ts';

export const ALLOW_FILE = '/etc/gatekeeper/allow';
export const APPLIED_DROP_IN = '/etc/ssh/sshd_config.d/01-gatekeeper.conf';

/** The account this run's operator logs in with: the list must always keep it. */
const OPERATOR = 'root';

interface Facts {
  allow: string | null;
}

function listed(content: string | null): string[] {
  return (content ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

function render(answers: Answers): string {
  const users = String(answers.users ?? '')
    .split(/\s+/)
    .filter(Boolean);
  return `# Written by the gatekeeper example step: sshd allows only these accounts.\n${users.join('\n')}\n`;
}

export function gatekeeperStep(opts: { seconds: number }): Step<Facts> {
  return {
    id: 'gatekeeper',
    title: 'Gatekeeper allow list (test example)',
    summary: 'Only the listed accounts may log in over SSH; the daemon applies the list as soon as it is written.',
    scope: 'node',
    risk: 'lockout',
    questions: [{ kind: 'text', id: 'users', prompt: 'Accounts allowed to log in (space-separated)' }],
    async probe(ctx) {
      return { allow: await ctx.files.read(ALLOW_FILE) };
    },
    plan(facts, answers): Change[] {
      const after = render(answers);
      if (facts.allow === after) return [];
      return [{ kind: 'file', path: ALLOW_FILE, before: facts.allow, after, mode: 0o644, activates: true, reason: 'the gatekeeper applies this list to sshd at once' }];
    },
    async verify(ctx, answers) {
      // The daemon applies the list within a second or so of the write: read what sshd now enforces.
      const want = listed(render(answers)).join(' ');
      let seen = '';
      for (let i = 0; i < 100; i++) {
        const r = await ctx.exec.run(['sshd', '-T']);
        seen = [...r.stdout.matchAll(/^allowusers (\S+)$/gim)].map((m) => m[1]).join(' ');
        // The daemon logs a line once it has reloaded sshd with the list.
        const applied = ((await ctx.files.read('/run/gatekeeper.applied')) ?? '').trim().split('\n').at(-1) ?? '';
        if (seen === want && applied.endsWith(` ${want}`)) return [{ label: 'sshd enforces the allow list', ok: true, detail: seen }];
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return [{ label: 'sshd enforces the allow list', ok: false, detail: `sshd -T allows: ${seen || '(everyone)'}; wanted: ${want}` }];
    },
    guard: {
      // The daemon re-applies a restored file by itself; starting it once more makes the revert's end state certain.
      reload: [['systemctl', 'start', 'gatekeeper.service']],
      seconds: opts.seconds,
      async beforeActivate(_ctx, _answers, _facts, changes): Promise<Check[]> {
        // Writing is activating: judge the intended content, never the file on disk.
        const file = changes.find((c) => c.kind === 'file' && c.path === ALLOW_FILE);
        const users = file?.kind === 'file' ? listed(file.after) : [];
        return [{ label: `the allow list keeps ${OPERATOR}, the account this session uses`, ok: users.includes(OPERATOR), detail: `listed: ${users.join(' ') || '(nobody)'}` }];
      },
    },
  };
}
