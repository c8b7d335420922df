// The providers by name: the one place that knows which clouds exist.
import type { ProviderName } from '../model.js';
import { AliyunProvider, type AliyunOptions } from './aliyun.js';
import { AzureProvider, azureGoToolPaths, type AzureOptions } from './azure.js';
import { Ec2Provider, ec2GoToolPaths, type Ec2Options } from './ec2.js';
import { GcpProvider, gcpGoToolPaths, type GcpOptions } from './gcp.js';
import { OciProvider, type OciOptions } from './oci.js';
import type { GoToolPaths, Provider, ProviderContext } from './provider.js';

export type { DmiStrings, FetchOptions, GoToolPaths, MetadataChange, Provider, ProviderContext } from './provider.js';
export { AliyunProvider, AzureProvider, Ec2Provider, GcpProvider, OciProvider };
export type { AliyunOptions, AzureOptions, Ec2Options, GcpOptions, OciOptions };

export const PROVIDER_NAMES: readonly ProviderName[] = ['azure', 'ec2', 'gcp', 'oci', 'aliyun'];

export type AnyProviderOptions = AzureOptions & Ec2Options & GcpOptions & OciOptions & AliyunOptions & ProviderContext;

export function createProvider(name: ProviderName, options: AnyProviderOptions = {}): Provider {
  switch (name) {
    case 'azure':
      return new AzureProvider(options);
    case 'ec2':
      return new Ec2Provider(options);
    case 'gcp':
      return new GcpProvider(options);
    case 'oci':
      return new OciProvider(options);
    case 'aliyun':
      return new AliyunProvider(options);
  }
}

/** The older Go cloud-network-setup's /api/cloud/ paths for a cloud's document. */
export function goToolPaths(name: ProviderName, document: unknown): GoToolPaths {
  switch (name) {
    case 'azure':
      return azureGoToolPaths(document);
    case 'ec2':
      return ec2GoToolPaths(document);
    case 'gcp':
      return gcpGoToolPaths(document);
    case 'oci':
    case 'aliyun':
      return notAGoToolCloud(name);
  }
}

/** cloud-network-setup had providers for Azure, EC2 and GCP only (pkg/provider), so elsewhere its two paths say where the data is. */
function notAGoToolCloud(name: ProviderName): GoToolPaths {
  const notServed = `cloud-network-setup had no ${name} provider; GET /api/v1/system and /api/v1/network serve its metadata`;
  return { system: { notServed }, network: { notServed } };
}
