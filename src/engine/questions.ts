/**
 * One validator for every way an answer arrives: typed into the wizard or read
 * from an answers file. Messages name what is wanted, never just "invalid".
 */
import { Secret } from './secret.ts';
import type { AnswerValue, Answers, Question, Validation } from './step.ts';

const TRUE_WORDS = new Set(['yes', 'y', 'true', 'on', '1']);
const FALSE_WORDS = new Set(['no', 'n', 'false', 'off', '0']);

export function validateAnswer(question: Question<any>, raw: unknown, answers: Answers = {}): Validation {
  switch (question.kind) {
    case 'text': {
      if (typeof raw !== 'string' && typeof raw !== 'number') return { ok: false, message: 'wants text' };
      const value = String(raw).trim();
      if (value === '') return { ok: false, message: 'must not be empty' };
      const problem = question.validate?.(value, answers);
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
