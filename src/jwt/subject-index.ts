/**
 * Token tries that answer Go's `Subject.IsContainedIn` for one subject against many at once, so
 * account validation never compares every export or import with every other one.
 */

/**
 * One trie node. Children are keyed by token; in an {@link OuterIndex} `*` tokens live in `star`
 * and a final `>` is recorded in `fwc` of the node before it, as nats-server's sublist does.
 * Fields are created on first use: a subject may have hundreds of thousands of tokens.
 */
class TrieNode<T> {
  /** The only literal child, until a second one moves both into `lit` (long subjects make chains). */
  token: string | undefined = undefined;
  next: TrieNode<T> | undefined = undefined;
  lit: Map<string, TrieNode<T>> | undefined = undefined;
  star: TrieNode<T> | undefined = undefined;
  /** The entry whose subject ends at this node (one per distinct subject). */
  end: T | undefined = undefined;
  /** The entry whose subject is this node's path followed by a final `>` (outer tries only). */
  fwc: T | undefined = undefined;
  /** Entries at or below this node: still wanted ones in outer tries, all in inner tries. */
  count = 0;
  readonly parent: TrieNode<T> | undefined;
  constructor(parent: TrieNode<T> | undefined) {
    this.parent = parent;
  }
}

function child<T>(node: TrieNode<T>, token: string, star: boolean): TrieNode<T> {
  if (star) return (node.star ??= new TrieNode<T>(node));
  const found = literal(node, token);
  if (found) return found;
  const c = new TrieNode<T>(node);
  if (node.next === undefined && node.lit === undefined) {
    node.token = token;
    node.next = c;
  } else {
    if (!node.lit) {
      node.lit = new Map([[node.token as string, node.next as TrieNode<T>]]);
      node.token = undefined;
      node.next = undefined;
    }
    node.lit.set(token, c);
  }
  return c;
}

function literal<T>(node: TrieNode<T>, token: string): TrieNode<T> | undefined {
  return node.next !== undefined ? (node.token === token ? node.next : undefined) : node.lit?.get(token);
}

function* literals<T>(node: TrieNode<T>): Iterable<TrieNode<T>> {
  if (node.next !== undefined) yield node.next;
  else if (node.lit) yield* node.lit.values();
}

/** What a query stops at: true from the visitor ends the walk. */
type Visit<T> = (entry: T) => boolean | void;

/** Count one more (or one fewer) entry at `node` and every node above it. */
function count<T>(node: TrieNode<T> | undefined, delta: number): void {
  for (let n = node; n; n = n.parent) n.count += delta;
}

/**
 * Distinct subjects stored as containers (`outer`): `match(inner)` visits every entry whose
 * subject contains `inner` in Go's token-wise sense (`*` matches any one token, a final `>` one or
 * more, and `a.>` counts as contained in `a.*`). Retired entries are skipped by later queries.
 */
export class OuterIndex<T> {
  private readonly root = new TrieNode<T>(undefined);
  private readonly nodes = new Map<T, TrieNode<T>>();

  /** Store `entry` under `subject`; a subject already stored keeps its first entry. */
  add(subject: string, entry: T): void {
    const tokens = subject.split(".");
    const last = tokens.length - 1;
    let node = this.root;
    for (let i = 0; i < last; i++) node = child(node, tokens[i] as string, tokens[i] === "*");
    const tail = tokens[last] as string;
    if (tail === ">") {
      if (node.fwc !== undefined) return;
      node.fwc = entry;
    } else {
      node = child(node, tail, tail === "*");
      if (node.end !== undefined) return;
      node.end = entry;
    }
    count(node, 1);
    this.nodes.set(entry, node);
  }

  /** Stop visiting `entry`; subtrees left without wanted entries are no longer walked. */
  retire(entry: T): void {
    const node = this.nodes.get(entry);
    if (!node) return;
    this.nodes.delete(entry);
    count(node, -1);
  }

  private wanted(e: T | undefined): e is T {
    return e !== undefined && this.nodes.has(e);
  }

  /** Visits stored entries containing `inner` until `visit` returns true; returns whether it did. */
  match(inner: string, visit: Visit<T>): boolean {
    const tokens = inner.split(".");
    // Explicit stack: a subject may have hundreds of thousands of tokens.
    const stack: [TrieNode<T>, number][] = [[this.root, 0]];
    for (let top = stack.pop(); top; top = stack.pop()) {
      const [node, d] = top;
      if (node.count === 0) continue;
      if (d === tokens.length) {
        if (this.wanted(node.end) && visit(node.end)) return true;
        continue;
      }
      if (this.wanted(node.fwc) && visit(node.fwc)) return true;
      if (node.star) stack.push([node.star, d + 1]);
      const lit = literal(node, tokens[d] as string);
      if (lit) stack.push([lit, d + 1]);
    }
    return false;
  }
}

/**
 * Distinct subjects stored as containees (`inner`, every token literal): `within(outer)` visits
 * every entry that `outer` contains, in Go's token-wise sense.
 */
export class InnerIndex<T> {
  private readonly root = new TrieNode<T>(undefined);

  /** Store `entry` under `subject`; a subject already stored keeps its first entry. */
  add(subject: string, entry: T): void {
    let node = this.root;
    for (const tk of subject.split(".")) node = child(node, tk, false);
    if (node.end !== undefined) return;
    node.end = entry;
    count(node, 1);
  }

  /** Visits stored entries contained in `outer` until `visit` returns true; returns whether it did. */
  within(outer: string, visit: Visit<T>): boolean {
    const tokens = outer.split(".");
    const last = tokens.length - 1;
    // Depth -1 marks "every entry strictly below this node" (what a final `>` takes).
    const stack: [TrieNode<T>, number][] = [[this.root, 0]];
    for (let top = stack.pop(); top; top = stack.pop()) {
      const [node, d] = top;
      if (d === -1) {
        for (const c of literals(node)) {
          if (c.end !== undefined && visit(c.end)) return true;
          if (c.count > (c.end !== undefined ? 1 : 0)) stack.push([c, -1]);
        }
        continue;
      }
      if (d === tokens.length) {
        if (node.end !== undefined && visit(node.end)) return true;
        continue;
      }
      const tk = tokens[d] as string;
      // Go treats a `>` anywhere but last as an ordinary token.
      if (d === last && tk === ">") {
        stack.push([node, -1]);
      } else if (tk === "*") {
        for (const c of literals(node)) stack.push([c, d + 1]);
      } else {
        const c = literal(node, tk);
        if (c) stack.push([c, d + 1]);
      }
    }
    return false;
  }
}
