/**
 * One validator for every way an answer arrives: typed into the wizard or read
 * from an answers file. Messages name what is wanted, never just "invalid".
 */
import { Secret } from './secret.ts';
import type { AnswerValue, Answers, Question, QuestionContext, Validation } from './step.ts';

const TRUE_WORDS = new Set(['yes', 'y', 'true', 'on', '1']);
const FALSE_WORDS = new Set(['no', 'n', 'false', 'off', '0']);

/** For validators when nothing can be read (tests, or a question that reads nothing). */
export const NO_FILES: QuestionContext = { files: { read: async () => null, meta: async () => null } };

export async function validateAnswer(question: Question<any>, raw: unknown, answers: Answers = {}, ctx: QuestionContext = NO_FILES): Promise<Validation> {
  switch (question.kind) {
    case 'text': {
      if (raw === null || raw === undefined) raw = '';
      if (typeof raw !== 'string' && typeof raw !== 'number') return { ok: false, message: 'wants text' };
      const typed = question.multiline ? String(raw).replace(/\r\n?/g, '\n').trim() : String(raw).trim();
      if (typed === '') return question.optional ? { ok: true, value: '' } : { ok: false, message: 'must not be empty' };
      const resolved = question.resolve ? await question.resolve(typed, ctx) : typed;
      if (typeof resolved !== 'string') return { ok: false, message: resolved.problem };
      const value = resolved.trim();
      const problem = await question.validate?.(value, answers, ctx);
      return problem ? { ok: false, message: problem } : { ok: true, value };
    }
    case 'password': {
      const value = raw instanceof Secret ? raw.reveal() : raw;
      if (typeof value !== 'string') return { ok: false, message: 'wants a password (text)' };
      if (value.length < question.minLength) {
        return { ok: false, message: `must be at least ${question.minLength} characters long` };
      }
      const problem = question.validate?.(value);
      return problem ? { ok: false, message: problem } : { ok: true, value: new Secret(value) };
    }
    case 'select': {
      const allowed = question.choices.map((c) => c.value);
      if (typeof raw !== 'string' || !allowed.includes(raw)) {
        return { ok: false, message: `must be one of: ${allowed.join(', ')}` };
      }
      return { ok: true, value: raw };
    }
    case 'confirm': {
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      const word = String(raw).trim().toLowerCase();
      if (TRUE_WORDS.has(word)) return { ok: true, value: true };
      if (FALSE_WORDS.has(word)) return { ok: true, value: false };
      return { ok: false, message: 'wants yes or no' };
    }
  }
}

/** The detected default of a question, when it has one. */
export function detectedDefault<F>(question: Question<F>, facts: F): AnswerValue | undefined {
  if (question.kind === 'password') return undefined;
  return question.detect?.(facts);
}

/** The questions that apply given the answers so far. */
export function applicableQuestions<F>(questions: readonly Question<F>[], answers: Answers, facts: F): Question<F>[] {
  return questions.filter((q) => !q.when || q.when(answers, facts));
}
