// Which route a request names, read as the API has always read it (its clients and scripts rely
// on it): a route's path is exact (`/api/v1/status`), ends in one parameter segment
// (`/api/v1/network/:link`) or in the rest of the path (`/api/cloud/*path`); letters match in
// any case; one trailing slash names the same resource, except in a rest, where it is part of the
// parameter; a parameter is percent-decoded, and one with a malformed escape stays as sent.

export interface Route<Answer> {
  /** "/exact", "/prefix/:name" or "/prefix/*name" */
  path: string;
  /** the parameter, decoded; '' for an exact path */
  answer: (param: string) => Answer;
}

export class RouteTable<Answer> {
  private readonly routes: { pattern: RegExp; route: Route<Answer> }[];

  constructor(routes: Route<Answer>[]) {
    this.routes = routes.map((route) => ({ pattern: patternOf(route.path), route }));
  }

  /** The first route whose path matches `path` (no query string), with its parameter decoded. */
  find(path: string): { route: Route<Answer>; param: string } | undefined {
    for (const { pattern, route } of this.routes) {
      const match = pattern.exec(path);
      if (match) return { route, param: decoded(match[1] ?? '') };
    }
    return undefined;
  }
}

/** The path of a request target, without its query string or fragment; '*' stays '*'. */
export function pathOf(target: string): string {
  // the absolute form a client speaking to a proxy sends names the same resource
  if (!target.startsWith('/')) return URL.canParse(target) ? new URL(target).pathname : target;
  const end = target.search(/[?#]/);
  return end < 0 ? target : target.slice(0, end);
}

function patternOf(path: string): RegExp {
  const [, prefix, kind] = /^(.*?)(?:\/([:*])\w+)?$/.exec(path)!;
  const literal = prefix!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const tail = kind === ':' ? '\\/([^/]+)\\/?' : kind === '*' ? '\\/([^]+)' : '\\/?';
  return new RegExp(`^${literal}${tail}$`, 'i');
}

function decoded(param: string): string {
  try {
    return decodeURIComponent(param);
  } catch {
    // no link or path has a name with a malformed escape, so the answer is a 404 that names it
    return param;
  }
}
