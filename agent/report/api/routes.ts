// The API's routes. Every handler reads the agent's view at request time and never waits for
// a reconcile, so the API answers while one runs. Before the first metadata fetch the
// metadata resources answer 503 {"error":"no metadata yet", "status": …}; /api/v1/status and
// /metrics always answer 200.
import type { ProviderSnapshot } from '../../metadata/model.js';
import type { Metrics } from '../metrics.js';
import { API_PATHS, type ErrorResource } from '../../../protocol/rest.js';
import {
  documentResource,
  networkResource,
  sshKeysResource,
  statusResource,
  systemResource,
  type AgentView,
} from './resources.js';
import type { Route } from './router.js';
import { goToolPaths } from '../../metadata/providers/index.js';
import { withoutSecrets } from '../../metadata/secret-filter.js';

const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** What a request is answered: the server adds the headers every answer carries. */
export interface Answer {
  status: number;
  /** headers of this answer alone (Allow, Retry-After, Connection) */
  headers?: Record<string, string>;
  type: string;
  body: string | Buffer;
}

export function jsonAnswer(status: number, body: unknown): Answer {
  return { status, type: JSON_CONTENT_TYPE, body: JSON.stringify(body, null, 2) + '\n' };
}

export function errorAnswer(status: number, error: string, extra: Omit<ErrorResource, 'error'> = {}): Answer {
  return jsonAnswer(status, { error, ...extra } satisfies ErrorResource);
}

export function apiRoutes(view: AgentView, metrics: Metrics): Route<Answer>[] {
  /** The route's answer from the snapshot, or a 503 saying there is none yet. */
  const withSnapshot = (answer: (snapshot: ProviderSnapshot) => Answer): Answer => {
    const snapshot = view.snapshot();
    if (snapshot) return answer(snapshot);
    return { ...errorAnswer(503, 'no metadata yet', { status: statusResource(view) }), headers: { 'Retry-After': '5' } };
  };

  // /network is the largest resource (hundreds of KB at scale) and changes only when a reconcile
  // replaces the snapshot, the plan or the link errors: rendered and encoded once per change
  // (docs/performance.md, "The REST API").
  let network: { snapshot: ProviderSnapshot; plan: unknown; linkErrors: unknown; body: Buffer } | undefined;
  const networkAnswer = (snapshot: ProviderSnapshot): Answer => {
    const plan = view.plan();
    const status = view.status();
    if (network?.snapshot !== snapshot || network.plan !== plan || network.linkErrors !== status.linkErrors) {
      network = { snapshot, plan, linkErrors: status.linkErrors, body: Buffer.from(JSON.stringify(networkResource(snapshot, plan, status), null, 2) + '\n') };
    }
    return { status: 200, type: JSON_CONTENT_TYPE, body: network.body };
  };

  const linkAnswer = (snapshot: ProviderSnapshot, name: string): Answer => {
    const network = networkResource(snapshot, view.plan(), view.status());
    const link = network.links.find((l) => l.name === name);
    if (link) return jsonAnswer(200, link);
    const known = network.links.map((l) => l.name).join(', ') || 'none';
    return errorAnswer(404, `no configured link named ${JSON.stringify(name)} (links: ${known})`);
  };

  // The older Go tool's endpoints, as its provider served them (README, "Migrating from cloud-network-setup").
  const goToolAnswer = (snapshot: ProviderSnapshot, path: string): Answer => {
    const paths = goToolPaths(snapshot.model.instance.provider, snapshot.document);
    const answer = Object.hasOwn(paths, path) ? paths[path] : undefined;
    if (answer === undefined) {
      return errorAnswer(404, `no /api/cloud/${path} on ${snapshot.model.instance.provider} (paths: ${Object.keys(paths).join(', ')})`);
    }
    if ('notServed' in answer) return errorAnswer(404, `/api/cloud/${path} is not served: ${answer.notServed}`);
    return jsonAnswer(200, withoutSecrets(answer.value) ?? null);
  };

  return [
    { path: API_PATHS.status, answer: () => jsonAnswer(200, statusResource(view)) },
    { path: API_PATHS.system, answer: () => withSnapshot((snapshot) => jsonAnswer(200, systemResource(snapshot))) },
    { path: API_PATHS.network, answer: () => withSnapshot(networkAnswer) },
    { path: `${API_PATHS.network}/:link`, answer: (link) => withSnapshot((snapshot) => linkAnswer(snapshot, link)) },
    { path: API_PATHS.sshKeys, answer: () => withSnapshot((snapshot) => jsonAnswer(200, sshKeysResource(snapshot))) },
    { path: API_PATHS.document, answer: () => withSnapshot((snapshot) => jsonAnswer(200, documentResource(snapshot))) },
    { path: '/api/cloud/*path', answer: (path) => withSnapshot((snapshot) => goToolAnswer(snapshot, path)) },
    { path: '/metrics', answer: () => ({ status: 200, type: PROMETHEUS_CONTENT_TYPE, body: metrics.render() }) },
  ];
}
