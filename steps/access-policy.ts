/**
 * The wizard's last step: the access-policy document, written from the
 * node's state as it is now (src/report). It is compliant while the newest
 * document says what a new one would say (apart from its date), so `check`
 * reports an out-of-date document as drift: someone changed who can do what.
 *
 * The document holds every step's own section (its `document` hook), so the
 * step reads the whole catalogue. steps/index.ts lists this step, so the
 * catalogue is imported when the probe runs, not when this module loads.
 */
import type { Change } from '../src/engine/change.ts';
import type { AnyStep, Check, Step } from '../src/engine/step.ts';
import { collectPolicyFacts, type PolicyFacts } from '../src/report/facts.ts';
import { renderAccessPolicy, comparableDocument } from '../src/report/access-policy.ts';

export const DOC_DIR = '/root/pve-baseline';
export const STEP_ID = 'access-policy';

interface DocFacts {
  policy: PolicyFacts;
  date: string;
  /** The pve-baseline that writes the document, as the entry point gave it. */
  version: string;
  hostname: string;
  dirExists: boolean;
  /** The newest document for this node, if any. */
  latest: { path: string; text: string } | null;
  /** Today's document, if one was written already today. */
  today: string | null;
}

const docName = (hostname: string, date: string) => `access-policy-${hostname}-${date}.md`;

/** The document without its date line and its token day counts (they change daily), for comparing two of them. */
export function withoutDate(text: string): string {
  return comparableDocument(text.replace(/^Written by pve-baseline \S+ on \d{4}-\d{2}-\d{2} /m, 'Written by pve-baseline on '));
}

function render(facts: DocFacts): string {
  return renderAccessPolicy(facts.policy, { date: facts.date, version: facts.version });
}

/** The document step over a catalogue (tests give their own). */
export function makeAccessPolicyStep(catalogue: () => Promise<readonly AnyStep[]>): Step<DocFacts> {
  return {
    id: STEP_ID,
    title: 'Access-policy document',
    summary: 'Writes what an auditor reads: accounts, roles and effective privileges, tokens, the SSH policy, procedures, the change log.',
    scope: 'node',
    risk: 'safe',

    requires: (node) => (node.isRoot ? undefined : 'needs root: the document reads root-only files (/etc/shadow, /etc/pve/priv)'),

    async probe(ctx) {
      // The document's own record is left out of its change log, or writing it would date it at once.
      const records = Object.fromEntries(Object.entries(ctx.journalRecords()).filter(([id]) => id !== STEP_ID));
      const policy = await collectPolicyFacts(ctx, await catalogue(), records, 'the pve-baseline journal');
      const date = new Date().toISOString().slice(0, 10);
      const pattern = new RegExp(`^access-policy-${ctx.node.hostname.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d{4}-\\d{2}-\\d{2}\\.md$`);
      const names = (await ctx.files.list(DOC_DIR)).filter((n) => pattern.test(n));
      const newest = names[names.length - 1];
      const latestText = newest ? await ctx.files.read(`${DOC_DIR}/${newest}`) : null;
      return {
        policy,
        date,
        version: ctx.toolVersion ?? 'unknown',
        hostname: ctx.node.hostname,
        dirExists: (await ctx.files.meta(DOC_DIR)) !== null,
        latest: newest && latestText !== null ? { path: `${DOC_DIR}/${newest}`, text: latestText } : null,
        today: await ctx.files.read(`${DOC_DIR}/${docName(ctx.node.hostname, date)}`),
      };
    },

    plan(facts) {
      const text = render(facts);
      if (facts.latest && withoutDate(facts.latest.text) === withoutDate(text)) return [];
      const changes: Change[] = [];
      if (!facts.dirExists) {
        changes.push({
          kind: 'command',
          argv: ['install', '-d', '-m', '0700', DOC_DIR],
          undo: ['rmdir', DOC_DIR],
          reason: 'a private folder for the documents: they map who can do what on this node',
        });
      }
      changes.push({
        kind: 'file',
        path: `${DOC_DIR}/${docName(facts.hostname, facts.date)}`,
        before: facts.today,
        after: text,
        mode: 0o600,
        owner: { uid: 0, gid: 0 },
        reason: facts.latest ? `the node changed since ${facts.latest.path} was written` : 'the first access-policy document of this node',
      });
      return changes;
    },

    async verify(ctx) {
      const facts = await this.probe(ctx);
      const meta = facts.latest ? await ctx.files.meta(facts.latest.path) : null;
      const current = facts.latest !== null && withoutDate(facts.latest.text) === withoutDate(render(facts));
      const checks: Check[] = [
        { label: 'the access-policy document says what the node is now', ok: current, ...(facts.latest ? { detail: facts.latest.path } : { detail: 'no document' }) },
        { label: 'only root can read it (0600)', ok: meta?.mode === 0o600, ...(meta ? { detail: meta.mode.toString(8) } : {}) },
      ];
      return checks;
    },
  };
}

export const accessPolicyStep = makeAccessPolicyStep(async () => (await import('./index.ts')).CATALOGUE);
