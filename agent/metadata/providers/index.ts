// The providers by name: the one place that knows which clouds exist.
import type { ProviderName } from '../model.js';
import { AzureProvider, azureGoToolPaths, type AzureOptions } from './azure.js';
import { Ec2Provider, ec2GoToolPaths, type Ec2Options } from './ec2.js';
import { GcpProvider, gcpGoToolPaths, type GcpOptions } from './gcp.js';
import type { GoToolPaths, Provider, ProviderContext } from './provider.js';

export type { DmiStrings, GoToolPaths, MetadataChange, Provider, ProviderContext } from './provider.js';
export { AzureProvider, Ec2Provider, GcpProvider };
export type { AzureOptions, Ec2Options, GcpOptions };

export const PROVIDER_NAMES: readonly ProviderName[] = ['azure', 'ec2', 'gcp'];

export type AnyProviderOptions = AzureOptions & Ec2Options & GcpOptions & ProviderContext;

export function createProvider(name: ProviderName, options: AnyProviderOptions = {}): Provider {
  switch (name) {
    case 'azure':
      return new AzureProvider(options);
    case 'ec2':
      return new Ec2Provider(options);
    case 'gcp':
      return new GcpProvider(options);
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
  }
}
