// The directory tree that EC2's and Alibaba Cloud's metadata services serve under /latest/: a GET
// of a leaf answers its text, a GET of a directory its listing, one entry per line,
// sub-directories ending in "/", no newline after the last.

/** A directory; `labels` overrides how an entry is listed (EC2's public-keys: "0=name"). */
export interface Directory {
  entries: Map<string, Node>;
  labels?: Map<string, string>;
}
export type Node = string | Directory;

/** A directory of the entries that are defined (an absent key is simply not listed). */
export function dir(entries: Record<string, Node | undefined>, labels?: Record<string, string>): Directory {
  const map = new Map<string, Node>();
  for (const [name, node] of Object.entries(entries)) if (node !== undefined) map.set(name, node);
  return { entries: map, ...(labels && { labels: new Map(Object.entries(labels)) }) };
}

/** The node at a path's segments, a directory found with or without its trailing "/". */
export function lookup(root: Directory, segments: string[]): Node | undefined {
  let node: Node = root;
  for (const segment of segments) {
    if (typeof node === 'string') return undefined;
    const next: Node | undefined = node.entries.get(`${segment}/`) ?? node.entries.get(segment);
    if (next === undefined) return undefined;
    node = next;
  }
  return node;
}

/** What a GET of the node answers: a leaf's text, or a directory's listing. */
export function nodeText(node: Node): string {
  return typeof node === 'string' ? node : [...node.entries.keys()].map((name) => node.labels?.get(name) ?? name).join('\n');
}
