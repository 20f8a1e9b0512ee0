import { cloneJSON } from '../core/json.ts';

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

/**
 * Every string in `value` with its path and the chain of containers above it (nearest last), in
 * document order. Iterative, so a payload of any depth is walked (the service resolves any depth
 * too); a container met again inside itself (a cycle) is skipped.
 */
export function visitStrings(
  value: unknown,
  visit: (text: string, path: readonly PathSegment[], parents: readonly unknown[]) => void,
): void {
  if (typeof value === 'string') {
    visit(value, [], []);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const path: PathSegment[] = [];
  const parents: object[] = [];
  // One frame per open container, in step with `parents`: the keys still to visit.
  const frames: Array<{ keys: PathSegment[]; next: number }> = [];
  const open = new Set<object>();
  const enter = (node: object): void => {
    open.add(node);
    parents.push(node);
    frames.push({ keys: Array.isArray(node) ? Array.from(node.keys()) : Object.keys(node), next: 0 });
  };
  enter(value);
  while (frames.length > 0) {
    const frame = frames[frames.length - 1]!;
    const node = parents[parents.length - 1]!;
    if (frame.next >= frame.keys.length) {
      frames.pop();
      open.delete(parents.pop()!);
      path.pop();
      continue;
    }
    const key = frame.keys[frame.next++]!;
    const child = (node as Record<PathSegment, unknown>)[key];
    if (typeof child === 'string') {
      path.push(key);
      visit(child, path, parents);
      path.pop();
    } else if (child !== null && typeof child === 'object' && !open.has(child)) {
      path.push(key);
      enter(child);
    }
  }
}

/** A deep copy of `value` with the string at each path replaced. */
export function replaceAtPaths(value: unknown, replacements: ReadonlyArray<{ path: readonly PathSegment[]; value: string }>): unknown {
  if (replacements.length === 0) return value;
  const copy = cloneJSON(value);
  for (const { path, value: next } of replacements) {
    if (path.length === 0) return next;
    let node: unknown = copy;
    for (const segment of path.slice(0, -1)) node = (node as Record<PathSegment, unknown>)[segment];
    (node as Record<PathSegment, unknown>)[path[path.length - 1]!] = next;
  }
  return copy;
}
