/**
 * The problem shape both journey check stages report in (validate.ts for drafts, publish.ts for
 * versions), and the field paths they name problems by.
 */

export interface JourneyProblem {
  field: string;
  /** The id of the node the problem is in, when it is in one. */
  node?: string;
  message: string;
}

export type Push = (field: string, node: string | undefined, message: string) => void;

export type Json = Record<string, unknown>;

export const problem = (field: string, node: string | undefined, message: string): JourneyProblem => (node === undefined ? { field, message } : { field, node, message });
export const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
export const quote = (s: unknown) => JSON.stringify(s);

/** `nodes` + 2 → `nodes[2]`, `nodes[2]` + `content` → `nodes[2].content`. */
export function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${quote(key)}]`;
}
