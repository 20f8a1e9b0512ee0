// Part of the bundle build (scripts/bundle.mjs). esbuild's `keepNames` (Nest resolves providers by
// class, and @nestjs/swagger names schemas after classes) wraps every named function in
// `__name(fn, "name")`, an Object.defineProperty. For a function created per call, such as an arrow
// in a request handler, that is per request: 7% of the presign route's CPU went there.
//
// This drops the wrappers that change nothing, because JavaScript already gives the function that
// name:
// - `const x = __name(() => …, "x")`, `{ x: __name(() => …, "x") }`, `x = __name(…, "x")` and
//   class fields `x = __name(…, "x")`: an anonymous function assigned this way is named after its
//   target;
// - `__name(function x() {…}, "x")`: a named function expression keeps its own name;
// - the statement `__name(x, "x")` next to `function x() {…}` in the same block.
// Where esbuild renamed a binding (`x2`) the string differs from the name and the wrapper stays, as
// do the static blocks that name classes.
'use strict';

const acorn = require('acorn');

const FUNCTION = new Set(['ArrowFunctionExpression', 'FunctionExpression']);

/** Returns the source without the redundant `__name` wrappers, and how many it dropped. */
function dropRedundantNames(source) {
  const ast = acorn.parse(source, { ecmaVersion: 'latest', sourceType: 'script', allowReturnOutsideFunction: true, allowHashBang: true });
  /** [start, end) ranges to delete: never overlapping, as a wrapper's two halves lie outside its function. */
  const cuts = [];
  walk(ast, null, (node, parent) => {
    const name = namedBy(node);
    if (name === undefined) return;
    const [fn] = node.arguments;
    if (FUNCTION.has(fn.type) && (fn.id ? fn.id.name === name : inferredName(node, parent) === name)) {
      cuts.push([node.start, fn.start], [fn.end, node.end]);
    } else if (fn.type === 'Identifier' && fn.name === name && parent?.type === 'ExpressionStatement' && declaresFunction(parent, name)) {
      cuts.push([parent.start, parent.end]);
    }
  });
  cuts.sort((a, b) => a[0] - b[0]);
  const parts = [];
  let at = 0;
  let dropped = 0;
  for (const [start, end] of cuts) {
    parts.push(source.slice(at, start));
    at = end;
    if (source.startsWith('__name', start)) dropped++;
  }
  parts.push(source.slice(at));
  return { source: parts.join(''), dropped };
}

/** The string of a `__name(x, "string")` call, else undefined. */
function namedBy(node) {
  if (node.type !== 'CallExpression' || node.callee.type !== 'Identifier' || node.callee.name !== '__name') return undefined;
  const [, name] = node.arguments;
  return node.arguments.length === 2 && name.type === 'Literal' && typeof name.value === 'string' ? name.value : undefined;
}

/** The name JavaScript gives an anonymous function in `call`'s place, if any. */
function inferredName(call, parent) {
  if (!parent) return undefined;
  if (parent.type === 'VariableDeclarator' && parent.init === call && parent.id.type === 'Identifier') return parent.id.name;
  if (parent.type === 'AssignmentExpression' && parent.operator === '=' && parent.right === call && parent.left.type === 'Identifier') return parent.left.name;
  if ((parent.type === 'Property' || parent.type === 'PropertyDefinition') && parent.value === call && !parent.computed) {
    if (parent.type === 'Property' && parent.kind !== 'init') return undefined;
    if (parent.key.type === 'Identifier') return parent.key.name;
    if (parent.key.type === 'Literal' && typeof parent.key.value === 'string') return parent.key.value;
  }
  return undefined;
}

/** Whether the block holding `statement` declares `function name`. */
function declaresFunction(statement, name) {
  const block = statement.parentBlock;
  return Boolean(block?.some((sibling) => sibling.type === 'FunctionDeclaration' && sibling.id?.name === name));
}

/** Depth-first over every node, iteratively (the bundle nests deeper than the stack allows). */
function walk(root, rootParent, visit) {
  const stack = [[root, rootParent]];
  while (stack.length) {
    const [node, parent] = stack.pop();
    visit(node, parent);
    for (const key of Object.keys(node)) {
      if (key === 'parentBlock') continue;
      const value = node[key];
      if (Array.isArray(value)) {
        for (const child of value) {
          if (child && typeof child.type === 'string') {
            if (key === 'body' || key === 'consequent') child.parentBlock = value;
            stack.push([child, node]);
          }
        }
      } else if (value && typeof value.type === 'string') {
        stack.push([value, node]);
      }
    }
  }
}

module.exports = { dropRedundantNames };
