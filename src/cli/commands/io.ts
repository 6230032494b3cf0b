/** What every command writes through, and the messages more than one command gives. */
export interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
}

export const NOT_ROOT =
  'pve-baseline changes system files and must run as root; nothing was changed. Run it as root (on Proxmox VE you log in as root, or use sudo -i).';

/** Control characters, and the invisible ones that reorder text (bidi): never sent raw to a terminal. */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/**
 * Text from a file or an argument, made safe to print: an escape sequence in
 * a journal entry or a file name must not move the cursor, clear the screen
 * or retitle the terminal. Each such character is shown as \u{XX}.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (ch) => `\\u{${ch.codePointAt(0)!.toString(16)}}`);
}

/** An Output whose every line is made printable: for text built from the journal or files. */
export function printableOutput(io: Output): Output {
  return { out: (line) => io.out(printable(line)), err: (line) => io.err(printable(line)) };
}
