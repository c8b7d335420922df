// The API's routes. Every handler reads the agent's view at request time and never waits for
// a reconcile, so the API answers while one runs. Before the first metadata fetch the
// metadata resources answer 503 {"error":"no metadata yet", "status": …}; /api/v1/status and
// /metrics always answer 200.
import Router from '@koa/router';
import type { Context } from 'koa';
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
import { goToolPaths } from '../../metadata/providers/index.js';
import { withoutSecrets } from '../../metadata/secret-filter.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function sendJson(ctx: Context, status: number, body: unknown): void {
  ctx.status = status;
  ctx.type = 'application/json; charset=utf-8';
  ctx.body = JSON.stringify(body, null, 2) + '\n';
}

export function sendError(ctx: Context, status: number, error: string, extra: Omit<ErrorResource, 'error'> = {}): void {
  sendJson(ctx, status, { error, ...extra } satisfies ErrorResource);
}

export function apiRouter(view: AgentView, metrics: Metrics): Router {
  const router = new Router();

  /** The snapshot, or a 503 answer saying there is none yet. */
  const ready = (ctx: Context): ProviderSnapshot | undefined => {
    const snapshot = view.snapshot();
    if (!snapshot) {
      ctx.set('Retry-After', '5');
      sendError(ctx, 503, 'no metadata yet', { status: statusResource(view) });
    }
    return snapshot;
  };

  router.get(API_PATHS.status, (ctx) => sendJson(ctx, 200, statusResource(view)));

  router.get(API_PATHS.system, (ctx) => {
    const snapshot = ready(ctx);
    if (snapshot) sendJson(ctx, 200, systemResource(snapshot));
  });

  // /network is the largest resource (hundreds of KB at scale) and changes only when a reconcile
  // replaces the snapshot, the plan or the link errors: rendered and encoded once per change
  // (docs/performance.md, "The REST API").
  let network: { snapshot: ProviderSnapshot; plan: unknown; linkErrors: unknown; body: Buffer } | undefined;
  router.get(API_PATHS.network, (ctx) => {
    const snapshot = ready(ctx);
    if (!snapshot) return;
    const plan = view.plan();
    const status = view.status();
    if (network?.snapshot !== snapshot || network.plan !== plan || network.linkErrors !== status.linkErrors) {
      network = { snapshot, plan, linkErrors: status.linkErrors, body: Buffer.from(JSON.stringify(networkResource(snapshot, plan, status), null, 2) + '\n') };
    }
    ctx.status = 200;
    ctx.type = 'application/json; charset=utf-8';
    ctx.body = network.body;
  });

  router.get(`${API_PATHS.network}/:link`, (ctx) => {
    const snapshot = ready(ctx);
    if (!snapshot) return;
    const name = ctx.params.link ?? '';
    const network = networkResource(snapshot, view.plan(), view.status());
    const link = network.links.find((l) => l.name === name);
    if (link) {
      sendJson(ctx, 200, link);
    } else {
      const known = network.links.map((l) => l.name).join(', ') || 'none';
      sendError(ctx, 404, `no configured link named ${JSON.stringify(name)} (links: ${known})`);
    }
  });

  router.get(API_PATHS.sshKeys, (ctx) => {
    const snapshot = ready(ctx);
    if (snapshot) sendJson(ctx, 200, sshKeysResource(snapshot));
  });

  router.get(API_PATHS.document, (ctx) => {
    const snapshot = ready(ctx);
    if (snapshot) sendJson(ctx, 200, documentResource(snapshot));
  });

  // The older Go tool's endpoints, as its provider served them (README, "Migrating from cloud-network-setup").
  router.get('/api/cloud/*path', (ctx) => {
    const snapshot = ready(ctx);
    if (!snapshot) return;
    const path = String(ctx.params.path);
    const paths = goToolPaths(snapshot.model.instance.provider, snapshot.document);
    const answer = Object.hasOwn(paths, path) ? paths[path] : undefined;
    if (answer === undefined) {
      sendError(ctx, 404, `no /api/cloud/${path} on ${snapshot.model.instance.provider} (paths: ${Object.keys(paths).join(', ')})`);
    } else if ('notServed' in answer) {
      sendError(ctx, 404, `/api/cloud/${path} is not served: ${answer.notServed}`);
    } else {
      sendJson(ctx, 200, withoutSecrets(answer.value) ?? null);
    }
  });

  router.get('/metrics', (ctx) => {
    ctx.status = 200;
    ctx.type = PROMETHEUS_CONTENT_TYPE;
    ctx.body = metrics.render();
  });

  return router;
}
