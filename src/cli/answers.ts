/**
 * The answers file for unattended runs: YAML, one mapping per step id, each
 * holding that step's question ids. Every error names the file, the line and
 * the field (`answers.yml:4: sysctl.profile: must be one of: ...`), and the
 * file is read completely before anything on the node is touched.
 *
 *   # pve-baseline answers
 *   admin-account:
 *     name: alice
 *
 * Each answer goes through its question's codec, as a typed one does. The
 * file itself must be UTF-8, use no YAML tags beyond the plain types and no
 * aliases, and name at least one step: a file without any would otherwise
 * run every step on its defaults without anyone having asked for it.
 */
import { isAlias, isMap, isNode, isScalar, LineCounter, parseDocument, visit } from 'yaml';
import { NO_FILES, validateAnswer } from '../engine/questions.ts';
import { keptAnswers, type AnyStep, type Answers, type QuestionContext } from '../engine/step.ts';

export class AnswersFileError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'AnswersFileError';
  }
}

/** The YAML types an answer may be written as; any other tag (!!binary, !!set, !foo) is refused. */
const PLAIN_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'seq', 'map'].map((t) => `tag:yaml.org,2002:${t}`));

/** Parse and validate; throws AnswersFileError listing every problem found. Bytes must be UTF-8. */
export async function parseAnswersFile(content: string | Uint8Array, fileName: string, steps: readonly AnyStep[], ctx: QuestionContext = NO_FILES): Promise<Record<string, Answers>> {
  let text: string;
  if (typeof content === 'string') text = content;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(content);
    } catch {
      throw new AnswersFileError([`${fileName}: not UTF-8 text; save the answers file as UTF-8`]);
    }
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const lineOf = (offset: number | undefined) => (offset === undefined ? undefined : lineCounter.linePos(offset).line);
  const where = (...nodes: unknown[]) => {
    for (const node of nodes) {
      const line = isNode(node) ? lineOf(node.range?.[0]) : undefined;
      if (line !== undefined) return `${fileName}:${line}`;
    }
    return fileName;
  };
  const problems: string[] = [];
  for (const error of doc.errors) {
    const pos = error.linePos?.[0] ?? lineCounter.linePos(error.pos[0]);
    problems.push(`${fileName}${pos ? `:${pos.line}:${pos.col}` : ''}: not valid YAML: ${error.message.split('\n')[0]}`);
  }
  if (problems.length) throw new AnswersFileError(problems);
  visit(doc, (_key, node) => {
    if (isAlias(node)) problems.push(`${where(node)}: an alias (*${node.source}): write the value itself; answers files use no anchors or aliases`);
    else if (isNode(node) && node.tag !== undefined && !PLAIN_TAGS.has(node.tag)) {
      problems.push(`${where(node)}: the YAML tag ${node.tag.replace(/^tag:yaml\.org,2002:/, '!!')} is not allowed: answers are plain text, numbers, yes/no or lists`);
    }
  });
  if (problems.length) throw new AnswersFileError(problems);

  const stepIds = steps.map((s) => s.id).join(', ');
  const root = doc.contents;
  const noStep = `${fileName}: names no step (an empty answers file decides nothing); give a section per step to apply (steps: ${stepIds}; "STEP: {}" takes a step's defaults)`;
  if (root === null || (isScalar(root) && root.value === null)) throw new AnswersFileError([noStep]);
  if (!isMap(root)) throw new AnswersFileError([`${where(root)}: wants a mapping of step ids to their answers`]);

  const byId = new Map(steps.map((s) => [s.id, s]));
  const sections: { step: AnyStep; keyNode: unknown; value: unknown }[] = [];
  for (const pair of root.items) {
    const stepKey = isScalar(pair.key) ? String(pair.key.value) : '';
    if (stepKey === 'version') {
      if (!isScalar(pair.value) || pair.value.value !== 1) problems.push(`${where(pair.value, pair.key)}: version: must be 1`);
      continue;
    }
    const step = byId.get(stepKey);
    if (!step) problems.push(`${where(pair.key)}: ${shown(stepKey)}: not a step (steps: ${stepIds})`);
    else sections.push({ step, keyNode: pair.key, value: pair.value });
  }
  if (!sections.length && !problems.length) throw new AnswersFileError([noStep]);

  // In catalogue order, so a step's codec can read what an earlier step was told (break-glass: not the admin's name).
  const order = new Map(steps.map((s, i) => [s.id, i]));
  sections.sort((a, b) => order.get(a.step.id)! - order.get(b.step.id)!);
  const result: Record<string, Answers> = {};
  const fileCtx: QuestionContext = { ...ctx, answersOf: (step) => keptAnswers(step, result[step.id]) };
  for (const { step, keyNode, value } of sections) {
    const questions = step.questions ?? [];
    if (value === null || (isScalar(value) && value.value === null)) {
      result[step.id] = {};
      continue;
    }
    if (!isMap(value)) {
      problems.push(`${where(keyNode)}: ${step.id}: wants a mapping of question ids to answers`);
      continue;
    }
    const answers: Answers = {};
    for (const item of value.items) {
      const id = isScalar(item.key) ? String(item.key.value) : '';
      const field = `${step.id}.${shown(id)}`;
      const question = questions.find((q) => q.id === id);
      if (!question) {
        const known = questions.map((q) => q.id);
        problems.push(`${where(item.key)}: ${field}: not a question of step ${step.id} (${known.length ? `questions: ${known.join(', ')}` : 'it asks none'})`);
        continue;
      }
      if (question.interactiveOnly) {
        problems.push(`${where(item.value, item.key)}: ${field}: only the wizard can ask this (${question.interactiveOnly}); leave it out of the file`);
        continue;
      }
      const raw = isScalar(item.value) ? item.value.value : (item.value as { toJSON?: () => unknown } | null)?.toJSON?.();
      const v = await validateAnswer(question, raw, answers, fileCtx);
      if (!v.ok) problems.push(`${where(item.value, item.key)}: ${field}: ${v.message}`);
      else answers[id] = v.value;
    }
    result[step.id] = answers;
  }
  if (problems.length) throw new AnswersFileError(byLine(problems, fileName));
  return result;
}

/** Problems in the order of the file's lines (sections are checked in catalogue order). */
function byLine(problems: string[], fileName: string): string[] {
  const line = (p: string) => Number(/^:(\d+)/.exec(p.slice(fileName.length))?.[1] ?? 0);
  return problems.map((p, i) => ({ p, i })).sort((a, b) => line(a.p) - line(b.p) || a.i - b.i).map(({ p }) => p);
}

/**
 * A key as a message names it: itself when it could be a step or question
 * id, otherwise not at all. The file may be anything root can read (named by
 * mistake, or by someone hoping to see it: /etc/shadow), and an escape
 * sequence must not reach the terminal, so the line number has to do.
 */
function shown(key: string): string {
  return /^[A-Za-z][\w-]{0,39}$/.test(key) ? key : '(this key)';
}
