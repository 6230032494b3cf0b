import { Children, cloneElement, createContext, Fragment, isValidElement, useContext, type ReactElement, type ReactNode } from 'react';
import { Text, type TextProps } from 'ink';
import { UNICODE } from '../glyphs.ts';
import { useTheme } from '../theme.ts';
import { columns, head, truncateMiddle } from '../truncate.ts';

/**
 * The columns the wizard draws in. Ink gives a <Text> no width, so App
 * provides it here; a component drawn further in (a margin, a label column)
 * passes its own `width` to <Truncated>.
 */
export const WidthContext = createContext(79);

export function useWidth(): number {
  return useContext(WidthContext);
}

export interface TruncatedProps extends Omit<TextProps, 'wrap' | 'children'> {
  /** Strings and nested <Text>; any other component counts as no columns, so keep those outside. */
  children?: ReactNode;
  /** Columns the line may take; the wizard's width when not given. */
  width?: number | undefined;
  /** Where the cut goes: the end (default) or the middle (for values whose end matters, like fingerprints). */
  position?: 'end' | 'middle';
}

/**
 * One line of text, cut to fit. Where the glyph set's ellipsis is Ink's "…",
 * Ink cuts it (wrap="truncate-end" or "truncate-middle"); on the Linux
 * console the line is cut here, to `width`, with the console's "...".
 */
export function Truncated({ children, width, position = 'end', ...text }: TruncatedProps) {
  const { glyphs } = useTheme();
  const available = useWidth();
  const wrap = position === 'middle' ? 'truncate-middle' : 'truncate-end';
  if (glyphs.ellipsis === UNICODE.ellipsis) {
    return (
      <Text {...text} wrap={wrap}>
        {children}
      </Text>
    );
  }
  const room = Math.max(0, width ?? available);
  const line =
    position === 'middle' && isPlain(children)
      ? truncateMiddle(plainText(children), room, glyphs.ellipsis)
      : clipEnd(children, room, glyphs.ellipsis);
  // Ink's truncation stays as a fallback: it only acts if this line still does not fit.
  return (
    <Text {...text} wrap={wrap}>
      {line}
    </Text>
  );
}

/** Strings and numbers only (no nested <Text>). */
function isPlain(node: ReactNode): boolean {
  return Children.toArray(node).every((n) => typeof n === 'string' || typeof n === 'number');
}

function plainText(node: ReactNode): string {
  return Children.toArray(node).join('');
}

/** The columns of a line's text, through nested <Text>. */
function lineColumns(node: ReactNode): number {
  return Children.toArray(node).reduce<number>((sum, n) => {
    if (typeof n === 'string' || typeof n === 'number') return sum + columns(String(n));
    return isTextLike(n) ? sum + lineColumns(n.props.children) : sum;
  }, 0);
}

function isTextLike(node: ReactNode): node is ReactElement<{ children?: ReactNode }> {
  return isValidElement(node) && (node.type === Text || node.type === Fragment);
}

/**
 * The line cut to `width` columns ending in `ellipsis`, keeping each piece's
 * <Text> styles: the ellipsis takes the style of the text it follows.
 */
function clipEnd(node: ReactNode, width: number, ellipsis: string): ReactNode {
  if (lineColumns(node) <= width) return node;
  if (width <= columns(ellipsis)) return head(ellipsis, width);
  let left = width - columns(ellipsis);
  let cut = false;
  const walk = (children: ReactNode): ReactNode[] =>
    Children.toArray(children).flatMap((n): ReactNode[] => {
      if (cut) return [];
      if (typeof n === 'string' || typeof n === 'number') {
        const s = String(n);
        if (columns(s) <= left) {
          left -= columns(s);
          return [s];
        }
        cut = true;
        return [head(s, left) + ellipsis];
      }
      if (isTextLike(n)) return [cloneElement(n, undefined, ...walk(n.props.children))];
      return [n];
    });
  // The line is wider than `width`, so some piece of text is where it is cut.
  return walk(node);
}
