/**
 * The answers file for unattended runs: YAML, one mapping per step id, each
 * holding that step's question ids. Every error names the file, the line and
 * the field (`answers.yml:4: sysctl.profile: must be one of: ...`), and the
 * file is read completely before anything on the node is touched.
 *
 *   # pve-baseline answers
 *   admin-account:
 *     name: alice
 */
import { isMap, isScalar, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { NO_FILES, validateAnswer } from '../engine/questions.ts';
import type { AnyStep, Answers, QuestionContext } from '../engine/step.ts';

export class AnswersFileError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'AnswersFileError';
  }
}

/** Parse and validate; throws AnswersFileError listing every problem found. */
export async function parseAnswersFile(text: string, fileName: string, steps: readonly AnyStep[], ctx: QuestionContext = NO_FILES): Promise<Record<string, Answers>> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const where = (node: YamlNode | null | undefined) => {
    const offset = node?.range?.[0];
    return offset === undefined ? fileName : `${fileName}:${lineCounter.linePos(offset).line}`;
  };
  const problems: string[] = [];
  for (const error of doc.errors) {
    const pos = error.linePos?.[0] ?? lineCounter.linePos(error.pos[0]);
    problems.push(`${fileName}${pos ? `:${pos.line}:${pos.col}` : ''}: not valid YAML: ${error.message.split('\n')[0]}`);
  }
  if (problems.length) throw new AnswersFileError(problems);
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return {};
  if (!isMap(root)) throw new AnswersFileError([`${where(root)}: wants a mapping of step ids to their answers`]);

  const byId = new Map(steps.map((s) => [s.id, s]));
  const result: Record<string, Answers> = {};
  for (const pair of root.items) {
    const stepKey = isScalar(pair.key) ? String(pair.key.value) : '';
    const keyNode = pair.key as YamlNode;
    if (stepKey === 'version') {
      if (!isScalar(pair.value) || pair.value.value !== 1) problems.push(`${where(pair.value as YamlNode)}: version: must be 1`);
      continue;
    }
    const step = byId.get(stepKey);
    if (!step) {
      problems.push(`${where(keyNode)}: ${stepKey}: not a step (steps: ${[...byId.keys()].join(', ')})`);
      continue;
    }
    const questions = step.questions ?? [];
    if (pair.value === null || (isScalar(pair.value) && pair.value.value === null)) {
      result[step.id] = {};
      continue;
    }
    if (!isMap(pair.value)) {
      problems.push(`${where(keyNode)}: ${stepKey}: wants a mapping of question ids to answers`);
      continue;
    }
    const answers: Answers = {};
    for (const item of pair.value.items) {
      const id = isScalar(item.key) ? String(item.key.value) : '';
      const field = `${step.id}.${id}`;
      const question = questions.find((q) => q.id === id);
      if (!question) {
        const known = questions.map((q) => q.id);
        problems.push(`${where(item.key as YamlNode)}: ${field}: not a question of step ${step.id} (${known.length ? `questions: ${known.join(', ')}` : 'it asks none'})`);
        continue;
      }
      const raw = isScalar(item.value) ? item.value.value : (item.value as { toJSON?: () => unknown } | null)?.toJSON?.();
      const v = await validateAnswer(question, raw, answers, ctx);
      if (!v.ok) problems.push(`${where(item.value as YamlNode)}: ${field}: ${v.message}`);
      else answers[id] = v.value;
    }
    result[step.id] = answers;
  }
  if (problems.length) throw new AnswersFileError(problems);
  return result;
}
