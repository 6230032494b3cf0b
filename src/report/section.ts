/**
 * A step's own part of the access-policy document, as data. A step that has
 * something to say about the node (the admin account, the SSH keys, the sshd
 * policy, the kernel settings) returns a section from its `document` hook;
 * the report lays the sections out in catalogue order between its own parts
 * (the node, the accounts and the access matrix before; recovery, the change
 * log and the evidence after). The report knows no step, so a new step
 * brings its section with it.
 *
 * Text in paragraphs and list items is markdown inline text written by the
 * step: anything read from the node (a name, a comment, a path) goes through
 * `code()`, so it reads literally. Table cells are escaped by the report.
 */

export type DocumentBlock =
  | { kind: 'paragraph'; text: string }
  | { kind: 'list'; items: string[]; numbered?: boolean }
  | { kind: 'table'; head: string[]; rows: string[][] };

export interface DocumentSubsection {
  heading: string;
  blocks: DocumentBlock[];
}

export interface DocumentSection {
  /** The section's heading (level 2), naming its subject, e.g. "SSH policy". */
  heading: string;
  blocks: DocumentBlock[];
  /** Parts under it (level 3), after its own blocks. */
  subsections?: DocumentSubsection[];
  /** The commands run and files read to write it, for the document's evidence list. */
  evidence?: string[];
}

export const paragraph = (text: string): DocumentBlock => ({ kind: 'paragraph', text });
export const bullets = (items: string[]): DocumentBlock => ({ kind: 'list', items });
export const numbered = (items: string[]): DocumentBlock => ({ kind: 'list', items, numbered: true });
export const table = (head: string[], rows: string[][]): DocumentBlock => ({ kind: 'table', head, rows });

/**
 * A code span that shows `text` literally, whatever it holds: a longer run
 * of backticks than any inside it, padded when it starts or ends with one.
 */
export function code(text: string): string {
  const flat = text.replace(/[\r\n]+/g, ' ');
  if (!flat.trim()) return '(empty)';
  const longest = Math.max(0, ...[...flat.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  const pad = flat.startsWith('`') || flat.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${flat}${pad}${fence}`;
}
