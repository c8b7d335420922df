// The providers by name: the one place that knows which clouds exist.
import type { ProviderName } from '../model.js';
import { AliyunProvider, type AliyunOptions } from './aliyun.js';
import { AzureProvider, type AzureOptions } from './azure.js';
import { Ec2Provider, type Ec2Options } from './ec2.js';
import { GcpProvider, type GcpOptions } from './gcp.js';
import { OciProvider, type OciOptions } from './oci.js';
import type { Provider, ProviderContext } from './provider.js';

export type { DmiStrings, FetchOptions, MetadataChange, Provider, ProviderContext } from './provider.js';
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
