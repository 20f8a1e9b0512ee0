/**
 * JSON helpers that work at any depth. Chat payloads are the caller's JSON and the service's
 * resolve reads them at any depth, but `JSON.stringify` and `structuredClone` recurse natively and
 * throw `RangeError: Maximum call stack size exceeded` a few thousand levels down. These keep an
 * explicit stack instead. (`JSON.parse` is iterative in V8 and needs no replacement.)
 */

type Container = Record<string, unknown> | unknown[];

interface WriteFrame {
  node: Container;
  keys: string[] | null;
  index: number;
  written: number;
}

/** What `JSON.stringify` serialises in place of `value`: `toJSON()`'s answer, boxed primitives unboxed. */
function toSerialisable(value: unknown, key: string): unknown {
  let next = value;
  if (next !== null && typeof next === 'object' && typeof (next as { toJSON?: unknown }).toJSON === 'function') {
    next = (next as { toJSON(key: string): unknown }).toJSON(key);
  }
  if (next instanceof Number || next instanceof String || next instanceof Boolean) next = next.valueOf();
  return next;
}

function isContainer(value: unknown): value is Container {
  return value !== null && typeof value === 'object';
}

/** A primitive's JSON text, or `undefined` for what JSON leaves out (`undefined`, functions, symbols). BigInt throws, as in `JSON.stringify`. */
function primitiveText(value: unknown): string | undefined {
  return JSON.stringify(value);
}

/**
 * `JSON.stringify(value)` (no replacer, no indentation) at any depth. The native writer runs first
 * (it is several times faster, and chat payloads are rarely deep); only a payload too deep for it
 * is written again with an explicit stack, to the same text.
 */
export function stringifyJSON(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
  }
  return stringifyWithoutRecursion(value);
}

/** `JSON.stringify(value)` without recursion: the same text, the same `TypeError` for a cycle or a BigInt. */
export function stringifyWithoutRecursion(value: unknown): string | undefined {
  const root = toSerialisable(value, '');
  if (!isContainer(root)) return primitiveText(root);
  const parts: string[] = [];
  const stack: WriteFrame[] = [];
  const open = new Set<object>();
  const enter = (node: Container): void => {
    if (open.has(node)) throw new TypeError('Converting circular structure to JSON');
    open.add(node);
    const keys = Array.isArray(node) ? null : Object.keys(node);
    parts.push(keys ? '{' : '[');
    stack.push({ node, keys, index: 0, written: 0 });
  };
  enter(root);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const { node, keys } = frame;
    const length = keys ? keys.length : (node as unknown[]).length;
    if (frame.index >= length) {
      parts.push(keys ? '}' : ']');
      open.delete(node);
      stack.pop();
      continue;
    }
    const i = frame.index++;
    const key = keys ? keys[i]! : String(i);
    const child = toSerialisable((node as Record<string, unknown>)[key], key);
    const text = isContainer(child) ? null : primitiveText(child);
    // An object member JSON cannot hold is left out; an array keeps its place as `null`.
    if (keys && text === undefined) continue;
    if (frame.written++ > 0) parts.push(',');
    if (keys) parts.push(JSON.stringify(key), ':');
    if (text === null) enter(child as Container);
    else parts.push(text ?? 'null');
  }
  return parts.join('');
}

/**
 * A deep copy of the arrays and objects in `value`, without recursion, each object copied as a
 * plain one with its own enumerable fields (what JSON sends, and what `structuredClone` kept of a
 * class instance): a path walked by `visitStrings` leads through copies only, so writing there
 * never touches the caller's value. Primitives, and objects JSON writes as something else (a
 * `toJSON` such as a `Date`'s, a boxed primitive), are shared. A cycle is kept as a cycle.
 */
export function cloneJSON<T>(value: T): T {
  if (!isCopied(value)) return value;
  const copies = new Map<object, Container>();
  const copyOf = (node: Container): Container => {
    let copy = copies.get(node);
    if (!copy) {
      copy = Array.isArray(node) ? new Array<unknown>(node.length) : {};
      copies.set(node, copy);
      pending.push(node);
    }
    return copy;
  };
  const pending: Container[] = [];
  const root = copyOf(value as Container);
  while (pending.length > 0) {
    const node = pending.pop()!;
    const copy = copies.get(node)! as Record<string, unknown>;
    for (const key of Object.keys(node)) {
      const child = (node as Record<string, unknown>)[key];
      copy[key] = isCopied(child) ? copyOf(child) : child;
    }
  }
  return root as T;
}

function isCopied(value: unknown): value is Container {
  if (!isContainer(value)) return false;
  if (Array.isArray(value)) return true;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  return !(value instanceof Number || value instanceof String || value instanceof Boolean);
}
