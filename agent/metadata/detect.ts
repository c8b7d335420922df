// Which cloud is this? Provider= in the config decides when set. Otherwise the firmware's DMI
// strings (no network, no waiting), and only when those are silent, one short probe per cloud
// in parallel, each with its own header so that only the real service can answer. What each
// cloud's DMI strings and probe look like is its provider's (Provider.detectByDmi, detectByProbe).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProviderChoice } from '../process/config.js';
import type { ProviderName } from './model.js';
import { createProvider, PROVIDER_NAMES, type DmiStrings, type Provider } from './providers/index.js';
import type { ClientSettings, ProviderContext } from './providers/provider.js';

export type DetectionSource = 'config' | 'dmi' | 'probe';

/** Provider= names exactly the clouds that have a provider: tsc refuses this line otherwise. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const PROVIDER_CHOICES_MATCH: Same<Exclude<ProviderChoice, 'auto'>, ProviderName> = true;

export interface Detection {
  provider: ProviderName;
  source: DetectionSource;
  /** what decided it, for the log */
  evidence: string;
  /** the provider to fetch with: the one that answered its probe keeps what it learnt (EC2's token) */
  instance: Provider;
}

export interface DetectOptions {
  configured: ProviderChoice;
  /** default /sys; tests use a temporary tree */
  sysfsRoot?: string;
  /** the probes' budget, all three at once */
  probeTimeoutMs?: number;
  /** client settings for the providers (base URL, timeouts); a probe tries once whatever they say */
  client?: ClientSettings;
  /** what the agent hands the provider it keeps (the kernel read, StateDir) */
  context?: ProviderContext;
  /** the providers to probe; by default one of each, built from `client` and `context` */
  providers?: Provider[];
}

export class DetectionError extends Error {
  override name = 'DetectionError';
}

export async function detectProvider(options: DetectOptions): Promise<Detection> {
  const build = (name: ProviderName) => createProvider(name, { ...options.client, ...options.context });
  if (options.configured !== 'auto') {
    const instance = options.providers?.find((p) => p.name === options.configured) ?? build(options.configured);
    return { provider: options.configured, source: 'config', evidence: `Provider=${options.configured}`, instance };
  }
  const dmi = await readDmi(options.sysfsRoot ?? '/sys');
  const providers = options.providers ?? PROVIDER_NAMES.map(build);
  for (const provider of providers) {
    const evidence = provider.detectByDmi(dmi);
    if (evidence) return { provider: provider.name, source: 'dmi', evidence, instance: provider };
  }
  const answered = await probe(providers, options.probeTimeoutMs ?? 2_000);
  const seen = `DMI says sys_vendor=${JSON.stringify(dmi.sysVendor ?? '')}, product_name=${JSON.stringify(dmi.productName ?? '')}, chassis_asset_tag=${JSON.stringify(dmi.chassisAssetTag ?? '')}`;
  if (answered.length === 1) {
    const instance = providers.find((p) => p.name === answered[0])!;
    return { provider: answered[0]!, source: 'probe', evidence: `only the ${answered[0]} metadata service answered its probe`, instance };
  }
  if (answered.length > 1) {
    throw new DetectionError(`cannot tell the cloud: ${seen}, and the metadata probes of ${answered.join(' and ')} all answered; set Provider= in [System] of the configuration file`);
  }
  throw new DetectionError(
    `no cloud detected: ${seen}, which names none of ${PROVIDER_NAMES.join(', ')}, and no metadata service answered its probe; set Provider= in [System] of the configuration file if this is a cloud VM`,
  );
}

/** Reads the DMI strings that identify clouds; unreadable ones (product_uuid is root-only) are absent. */
export async function readDmi(sysfsRoot: string): Promise<DmiStrings> {
  const read = async (...path: string[]) => {
    try {
      return (await readFile(join(sysfsRoot, ...path), 'utf8')).trim();
    } catch {
      return undefined;
    }
  };
  const [sysVendor, productName, chassisAssetTag, productUuid, hypervisorUuid] = await Promise.all([
    read('class', 'dmi', 'id', 'sys_vendor'),
    read('class', 'dmi', 'id', 'product_name'),
    read('class', 'dmi', 'id', 'chassis_asset_tag'),
    read('class', 'dmi', 'id', 'product_uuid'),
    read('hypervisor', 'uuid'),
  ]);
  return { sysVendor, productName, chassisAssetTag, productUuid, hypervisorUuid };
}

/** The clouds whose metadata service answered its probe within the budget. */
export async function probe(providers: Provider[], timeoutMs: number): Promise<ProviderName[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`probe budget of ${timeoutMs} ms spent`)), timeoutMs);
  try {
    const results = await Promise.all(providers.map((p) => p.detectByProbe(controller.signal).catch(() => false)));
    return providers.filter((_, i) => results[i]).map((p) => p.name);
  } finally {
    clearTimeout(timer);
  }
}
