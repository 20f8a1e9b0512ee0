import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

function shortUrl(url) {
  if (!url) return '';
  let path = url.replace(/^file:\/\//, '');
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/(.*)$/.exec(path);
  if (pnpm) return pnpm[1];
  const plain = /node_modules\/(.*)$/.exec(path);
  if (plain) return plain[1];
  if (path.startsWith(REPO_ROOT)) return path.slice(REPO_ROOT.length);
  // Another checkout (BENCH_APP_DIR): keep the workspace-relative part.
  const workspace = /\/((?:apps|libs)\/[^/]+\/.*)$/.exec(path);
  return workspace ? workspace[1] : path;
}

/** What a frame belongs to: an npm package, a workspace package, Node itself, or V8. */
function owner(url, functionName) {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  const short = shortUrl(url);
  if (/node_modules/.test(url)) {
    const parts = short.split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  const workspace = /^(apps|libs)\/([^/]+)/.exec(short);
  return workspace ? `@jan/${workspace[2]}` : short;
}

/**
 * Self and inclusive time per function, and self time per package, of a V8 .cpuprofile.
 * Inclusive time counts a recursive function once per stack.
 */
export function summarizeProfile(profile, top = 15) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const totalUs = [...self.values()].reduce((a, b) => a + b, 0);
  const keyOf = (node) => {
    const f = node.callFrame;
    return `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`.trim();
  };

  const subtree = new Map();
  const order = [];
  const root = profile.nodes[0];
  const stack = [root];
  while (stack.length) {
    const node = stack.pop();
    order.push(node);
    for (const child of node.children ?? []) stack.push(byId.get(child));
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    let sum = self.get(node.id) ?? 0;
    for (const child of node.children ?? []) sum += subtree.get(child) ?? 0;
    subtree.set(node.id, sum);
  }

  const selfByKey = new Map();
  const selfByOwner = new Map();
  for (const node of profile.nodes) {
    const us = self.get(node.id) ?? 0;
    if (!us) continue;
    selfByKey.set(keyOf(node), (selfByKey.get(keyOf(node)) ?? 0) + us);
    const o = owner(node.callFrame.url, node.callFrame.functionName);
    selfByOwner.set(o, (selfByOwner.get(o) ?? 0) + us);
  }

  const inclusive = new Map();
  const active = new Map();
  const walk = [[root, false]];
  while (walk.length) {
    const [node, leaving] = walk.pop();
    const key = keyOf(node);
    if (leaving) {
      active.set(key, active.get(key) - 1);
      continue;
    }
    if (!active.get(key)) inclusive.set(key, (inclusive.get(key) ?? 0) + subtree.get(node.id));
    active.set(key, (active.get(key) ?? 0) + 1);
    walk.push([node, true]);
    for (const child of node.children ?? []) walk.push([byId.get(child), false]);
  }

  const rank = (map, skip = () => false) =>
    [...map]
      .filter(([k]) => !skip(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, pct: totalUs ? (100 * us) / totalUs : 0 }));
  const idle = (k) => /^\((root|program|idle)\)/.test(k);
  return {
    totalMs: totalUs / 1000,
    idleMs: ((selfByKey.get('(idle)') ?? 0) + (selfByKey.get('(program)') ?? 0)) / 1000,
    self: rank(selfByKey, idle),
    inclusive: rank(inclusive, idle),
    packages: rank(selfByOwner, idle),
  };
}

export function formatProfileSummary(summary, title) {
  const lines = [`${title} — ${summary.totalMs.toFixed(0)} ms sampled, ${summary.idleMs.toFixed(0)} ms idle/program`];
  const section = (name, rows) => {
    lines.push(`  ${name}`);
    for (const r of rows) lines.push(`    ${r.pct.toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(6)} ms  ${r.name}`);
  };
  section('self time by package', summary.packages.slice(0, 10));
  section('self time by function', summary.self);
  section('inclusive time by function', summary.inclusive);
  return lines.join('\n');
}
