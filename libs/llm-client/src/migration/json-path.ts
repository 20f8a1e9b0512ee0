/** Path of a value inside a JSON document, as segments and as `messages[2].content[1].image_url.url`. */
export type PathSegment = string | number;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out || '$';
}

/** Every string in `value` with its path and the chain of containers above it (nearest last). */
export function visitStrings(
  value: unknown,
  visit: (text: string, path: readonly PathSegment[], parents: readonly unknown[]) => void,
): void {
  const path: PathSegment[] = [];
  const parents: unknown[] = [];
  const seen = new Set<unknown>();
  const walk = (node: unknown): void => {
    if (typeof node === 'string') {
      visit(node, path, parents);
      return;
    }
    if (node === null || typeof node !== 'object' || seen.has(node)) return;
    seen.add(node);
    parents.push(node);
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        path.push(i);
        walk(node[i]);
        path.pop();
      }
    } else {
      for (const key of Object.keys(node)) {
        path.push(key);
        walk((node as Record<string, unknown>)[key]);
        path.pop();
      }
    }
    parents.pop();
    seen.delete(node);
  };
  walk(value);
}

/** A deep copy of `value` with the string at each path replaced. */
export function replaceAtPaths(value: unknown, replacements: ReadonlyArray<{ path: readonly PathSegment[]; value: string }>): unknown {
  if (replacements.length === 0) return value;
  const copy = structuredClone(value);
  for (const { path, value: next } of replacements) {
    if (path.length === 0) return next;
    let node: unknown = copy;
    for (const segment of path.slice(0, -1)) node = (node as Record<PathSegment, unknown>)[segment];
    (node as Record<PathSegment, unknown>)[path[path.length - 1]!] = next;
  }
  return copy;
}
