// The providers by name: the one place that knows which clouds exist.
import type { ProviderName } from '../model.js';
import { AzureProvider, type AzureOptions } from './azure.js';
import { Ec2Provider, type Ec2Options } from './ec2.js';
import { GcpProvider, type GcpOptions } from './gcp.js';
import type { Provider, ProviderContext } from './provider.js';

export type { DmiStrings, FetchOptions, MetadataChange, Provider, ProviderContext } from './provider.js';
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
