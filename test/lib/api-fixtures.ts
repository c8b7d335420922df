// Realistic agent views for the REST API and cnctl tests: one VM per cloud, each with a
// primary and a second NIC, the provider's own document (secrets included, as a careless
// provider might leave them) and a plan computed by the real planner against a modelled kernel.
import type { AgentView } from '../../agent/report/api/resources.js';
import type { MetadataModel, ProviderName, ProviderSnapshot } from '../../agent/metadata/model.js';
import { plan, type Plan } from '../../agent/plan/planner.js';
import { initialStatus, type ReconcileStatus } from '../../agent/reconcile/reconciler.js';
import type { KernelState } from '../../netlink/types.js';
import { applied } from './fake-kernel.js';

/** Values that must never appear in any API answer. */
export const SECRETS = [
  'ASIAQEXAMPLEKEYID7Z',
  'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLESECRET',
  'IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKENxyz',
  'SIGNATUREaWRlbnRpdHktc2lnbmF0dXJl',
  'MIAGCSqGSIb3DQEHAqCAMIACAQExDzANPKCS7',
  'RSA2048MIAGCSqGSIb3DQEHAqCAMIACAQE',
  'hunter2-from-user-data',
  'azure-tag-db-password-value',
  'azure-admin-password-value',
  'gke-kubelet-bootstrap-token',
  'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw',
];

const ec2Document = {
  'meta-data': {
    'instance-id': 'i-0123456789abcdef0',
    'instance-type': 'c5.xlarge',
    'local-ipv4': '172.31.16.10',
    mac: '02:1f:9a:00:00:01',
    placement: { region: 'eu-west-1', 'availability-zone': 'eu-west-1a' },
    iam: {
      info: '{"Code":"Success","InstanceProfileArn":"arn:aws:iam::123456789012:instance-profile/web"}',
      'security-credentials': {
        web: {
          Code: 'Success',
          Type: 'AWS-HMAC',
          AccessKeyId: SECRETS[0],
          SecretAccessKey: SECRETS[1],
          Token: SECRETS[2],
          Expiration: '2030-01-01T00:00:00Z',
        },
      },
    },
    'identity-credentials': { ec2: { 'security-credentials': { 'ec2-instance': { AccessKeyId: SECRETS[0] } } } },
    network: {
      interfaces: {
        macs: {
          '02:1f:9a:00:00:01': {
            'device-number': '0',
            'local-ipv4s': '172.31.16.10',
            'subnet-ipv4-cidr-block': '172.31.16.0/20',
            'public-ipv4s': '54.155.10.20',
            'interface-id': 'eni-0aaa',
          },
          '02:1f:9a:00:00:02': {
            'device-number': '1',
            'local-ipv4s': '172.31.32.10\n172.31.32.11',
            'subnet-ipv4-cidr-block': '172.31.32.0/20',
            'interface-id': 'eni-0bbb',
          },
        },
      },
    },
  },
  dynamic: {
    'instance-identity': {
      document: { instanceId: 'i-0123456789abcdef0', region: 'eu-west-1' },
      signature: SECRETS[3],
      pkcs7: SECRETS[4],
      rsa2048: SECRETS[5],
    },
  },
  'user-data': `#!/bin/sh\nexport DB_PASSWORD=${SECRETS[6]}\n`,
};

const azureDocument = {
  compute: {
    azEnvironment: 'AzurePublicCloud',
    location: 'eastus',
    name: 'web-1',
    vmId: '02aab8a4-74ef-476e-8182-f6d2ba4166a6',
    vmSize: 'Standard_D4s_v3',
    zone: '1',
    osType: 'Linux',
    osProfile: { adminUsername: 'azureuser', adminPassword: SECRETS[8], disablePasswordAuthentication: 'true' },
    tagsList: [
      { name: 'env', value: 'prod' },
      { name: 'dbPassword', value: SECRETS[7] },
    ],
    customData: SECRETS[6],
    publicKeys: [{ keyData: 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQazure azureuser', path: '/home/azureuser/.ssh/authorized_keys' }],
  },
  network: {
    interface: [
      {
        macAddress: '000D3A5D2D65',
        ipv4: { ipAddress: [{ privateIpAddress: '10.4.0.4', publicIpAddress: '' }], subnet: [{ address: '10.4.0.0', prefix: '24' }] },
        ipv6: { ipAddress: [] },
      },
      {
        macAddress: '000D3A5D2D66',
        ipv4: {
          ipAddress: [
            { privateIpAddress: '10.4.0.5', publicIpAddress: '20.253.243.104' },
            { privateIpAddress: '10.4.0.6', publicIpAddress: '' },
          ],
          subnet: [{ address: '10.4.0.0', prefix: '24' }],
        },
        ipv6: { ipAddress: [] },
      },
    ],
  },
};

const gcpDocument = {
  id: '7454466891239578912',
  name: 'gce-1',
  zone: 'projects/123/zones/us-central1-a',
  machineType: 'projects/123/machineTypes/n2-standard-4',
  attributes: {
    'ssh-keys': 'alice:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIgcp alice',
    'kube-env': `KUBELET_BOOTSTRAP_TOKEN: ${SECRETS[9]}`,
    'startup-script': `echo ${SECRETS[6]}`,
    'tls-material': `-----BEGIN PRIVATE KEY-----\n${SECRETS[10]}\n-----END PRIVATE KEY-----`,
  },
  serviceAccounts: { default: { email: '123-compute@developer.gserviceaccount.com', token: SECRETS[2] } },
  networkInterfaces: [
    { ip: '10.128.0.2', mac: '42:01:0a:80:00:02', gateway: '10.128.0.1', subnetmask: '255.255.240.0', mtu: 1460, accessConfigs: [{ externalIp: '34.70.1.2' }] },
    { ip: '10.130.0.5', mac: '42:01:0a:82:00:05', gateway: '10.130.0.1', subnetmask: '255.255.255.0', mtu: 1460, ipAliases: ['10.130.8.0/24'], accessConfigs: [] },
  ],
};

const ociDocument = {
  instance: {
    id: 'ocid1.instance.oc1.eu-frankfurt-1.antheljtexample',
    displayName: 'oci-1',
    canonicalRegionName: 'eu-frankfurt-1',
    availabilityDomain: 'qIZq:EU-FRANKFURT-1-AD-1',
    shape: 'VM.Standard.E5.Flex',
    metadata: { ssh_authorized_keys: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIoci opc', user_data: SECRETS[6] },
  },
  vnics: [
    { vnicId: 'ocid1.vnic.oc1.eu-frankfurt-1.a', privateIp: '10.0.0.230', vlanTag: 1039, macAddr: '02:00:17:05:D1:DB', virtualRouterIp: '10.0.0.1', subnetCidrBlock: '10.0.0.0/24' },
    { vnicId: 'ocid1.vnic.oc1.eu-frankfurt-1.b', privateIp: '10.0.4.5', vlanTag: 1041, macAddr: '02:00:17:02:2B:B1', virtualRouterIp: '10.0.4.1', subnetCidrBlock: '10.0.4.0/24' },
  ],
  identity: { 'key.pem': `-----BEGIN PRIVATE KEY-----\n${SECRETS[10]}\n-----END PRIVATE KEY-----` },
};

const aliyunDocument = {
  'meta-data': {
    'instance-id': 'i-bp13znx0m0me8cquexample',
    'region-id': 'cn-hangzhou',
    'zone-id': 'cn-hangzhou-i',
    mac: '00:16:3e:30:3e:ca',
    ram: { 'security-credentials': { role: { AccessKeyId: SECRETS[0], AccessKeySecret: SECRETS[1], SecurityToken: SECRETS[2] } } },
    network: {
      interfaces: {
        macs: {
          '00:16:3e:30:3e:ca': { 'primary-ip-address': '192.168.0.9', 'private-ipv4s': '["192.168.0.9"]', netmask: '255.255.255.0', gateway: '192.168.0.253' },
          '00:16:3e:0f:a1:27': { 'primary-ip-address': '192.168.1.21', 'private-ipv4s': '["192.168.1.20","192.168.1.21"]', netmask: '255.255.255.0', gateway: '192.168.1.253' },
        },
      },
    },
  },
  dynamic: { 'instance-identity': { pkcs7: SECRETS[4] } },
  'user-data': `#!/bin/sh\nexport DB_PASSWORD=${SECRETS[6]}\n`,
};

interface Fixture {
  snapshot: ProviderSnapshot;
  kernel: KernelState;
  /** link names in NIC order, for the assertions */
  links: [string, string];
}

function nic(
  mac: string,
  index: number,
  addresses: string[],
  prefixLength: number,
  subnet: string,
  gateway: string,
  publicIpv4: string[],
  extra: Partial<MetadataModel['nics'][number]> = {},
): MetadataModel['nics'][number] {
  return {
    mac,
    index,
    primary: index === 0,
    ipv4: addresses.map((address, i) => ({ address, prefixLength, primary: i === 0 })),
    publicIpv4,
    ipv6: [],
    subnet: { address: subnet, prefixLength },
    gateway,
    routedRanges: [],
    hostAddresses: false,
    details: {},
    ...extra,
  };
}

function kernelWith(links: [string, string], macs: [string, string], dhcp: { address: string; prefixLength: number }, mtu: number): KernelState {
  return {
    links: [
      { index: 1, name: 'lo', mac: '00:00:00:00:00:00', up: true, mtu: 65536, loopback: true },
      { index: 2, name: links[0], mac: macs[0], up: true, mtu, loopback: false },
      { index: 3, name: links[1], mac: macs[1], up: true, mtu, loopback: false },
    ],
    addresses: [{ ifindex: 2, family: 'inet', address: dhcp.address, prefixLength: dhcp.prefixLength, dynamic: true, noPrefixRoute: false, scope: 0 }],
    routes: [],
    rules: [],
  };
}

export function fixture(provider: ProviderName): Fixture {
  switch (provider) {
    case 'azure': {
      const macs: [string, string] = ['00:0d:3a:5d:2d:65', '00:0d:3a:5d:2d:66'];
      return {
        links: ['eth0', 'eth1'],
        kernel: kernelWith(['eth0', 'eth1'], macs, { address: '10.4.0.4', prefixLength: 24 }, 1500),
        snapshot: {
          model: {
            instance: { provider, id: '02aab8a4-74ef-476e-8182-f6d2ba4166a6', name: 'web-1', region: 'eastus', zone: '1', size: 'Standard_D4s_v3', image: 'Canonical:ubuntu-24_04-lts:server:latest', details: { subscriptionId: '8d10da13-8125-4ba9-a717-bf7490507b3d', resourceGroupName: 'rg-web' } },
            nics: [
              nic(macs[0], 0, ['10.4.0.4'], 24, '10.4.0.0', '10.4.0.1', []),
              nic(macs[1], 1, ['10.4.0.5', '10.4.0.6'], 24, '10.4.0.0', '10.4.0.1', ['20.253.243.104']),
            ],
          },
          document: azureDocument,
          sshKeys: ['ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQazure azureuser'],
        },
      };
    }
    case 'ec2': {
      const macs: [string, string] = ['02:1f:9a:00:00:01', '02:1f:9a:00:00:02'];
      return {
        links: ['ens5', 'ens6'],
        kernel: kernelWith(['ens5', 'ens6'], macs, { address: '172.31.16.10', prefixLength: 20 }, 9001),
        snapshot: {
          model: {
            instance: { provider, id: 'i-0123456789abcdef0', name: 'ip-172-31-16-10', region: 'eu-west-1', zone: 'eu-west-1a', size: 'c5.xlarge', image: 'ami-0abcdef1234567890',
              // sessionToken and tls-material (below): what a careless provider might put in its details
              details: { accountId: '123456789012', architecture: 'x86_64', sessionToken: SECRETS[2]! },
            },
            nics: [
              nic(macs[0], 0, ['172.31.16.10'], 20, '172.31.16.0', '172.31.16.1', ['54.155.10.20'], {
                details: { 'interface-id': 'eni-0aaa', 'device-number': '0', 'subnet-id': 'subnet-0aaa', 'vpc-id': 'vpc-0abc', 'security-group-ids': 'sg-0aaa1111, sg-0ccc3333' },
              }),
              nic(macs[1], 1, ['172.31.32.10', '172.31.32.11'], 20, '172.31.32.0', '172.31.32.1', [], {
                details: { 'interface-id': 'eni-0bbb', 'device-number': '1', 'subnet-id': 'subnet-0bbb', 'vpc-id': 'vpc-0abc', 'security-group-ids': 'sg-0bbb2222', 'tls-material': `-----BEGIN PRIVATE KEY-----\n${SECRETS[10]}` },
              }),
            ],
          },
          document: ec2Document,
          sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIec2 ec2-user'],
        },
      };
    }
    case 'oci': {
      const macs: [string, string] = ['02:00:17:05:d1:db', '02:00:17:02:2b:b1'];
      return {
        links: ['enp0s3', 'enp1s0'],
        kernel: kernelWith(['enp0s3', 'enp1s0'], macs, { address: '10.0.0.230', prefixLength: 24 }, 9000),
        snapshot: {
          model: {
            instance: { provider, id: 'ocid1.instance.oc1.eu-frankfurt-1.antheljtexample', name: 'oci-1', region: 'eu-frankfurt-1', zone: 'EU-FRANKFURT-1-AD-1', size: 'VM.Standard.E5.Flex', image: 'ocid1.image.oc1.eu-frankfurt-1.example',
              details: { compartmentId: 'ocid1.compartment.oc1..aaaaexample', availabilityDomain: 'qIZq:EU-FRANKFURT-1-AD-1', faultDomain: 'FAULT-DOMAIN-2' },
            },
            nics: [
              nic(macs[0], 0, ['10.0.0.230'], 24, '10.0.0.0', '10.0.0.1', [], { details: { vnicId: 'ocid1.vnic.oc1.eu-frankfurt-1.a' } }),
              nic(macs[1], 1, ['10.0.4.5'], 24, '10.0.4.0', '10.0.4.1', [], { details: { vnicId: 'ocid1.vnic.oc1.eu-frankfurt-1.b' } }),
            ],
          },
          document: ociDocument,
          sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIoci opc'],
        },
      };
    }
    case 'aliyun': {
      const macs: [string, string] = ['00:16:3e:30:3e:ca', '00:16:3e:0f:a1:27'];
      return {
        links: ['eth0', 'eth1'],
        kernel: kernelWith(['eth0', 'eth1'], macs, { address: '192.168.0.9', prefixLength: 24 }, 1500),
        snapshot: {
          model: {
            instance: { provider, id: 'i-bp13znx0m0me8cquexample', name: 'ecs-1', region: 'cn-hangzhou', zone: 'cn-hangzhou-i', size: 'ecs.g7.xlarge', image: 'aliyun_3_x64_20G_alibase_20240528.vhd', details: {} },
            nics: [
              nic(macs[0], 0, ['192.168.0.9'], 24, '192.168.0.0', '192.168.0.253', [], {
                details: { 'network-interface-id': 'eni-bp1aaa', 'vpc-id': 'vpc-bp1example', 'vswitch-id': 'vsw-bp1aaa', 'vpc-cidr-block': '192.168.0.0/16' },
              }),
              nic(macs[1], 1, ['192.168.1.21', '192.168.1.20'], 24, '192.168.1.0', '192.168.1.253', [], {
                details: { 'network-interface-id': 'eni-bp1bbb', 'vpc-id': 'vpc-bp1example', 'vswitch-id': 'vsw-bp1bbb', 'vpc-cidr-block': '192.168.0.0/16' },
              }),
            ],
          },
          document: aliyunDocument,
          sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIaliyun root'],
        },
      };
    }
    case 'gcp': {
      const macs: [string, string] = ['42:01:0a:80:00:02', '42:01:0a:82:00:05'];
      return {
        links: ['ens4', 'ens5'],
        kernel: kernelWith(['ens4', 'ens5'], macs, { address: '10.128.0.2', prefixLength: 32 }, 1460),
        snapshot: {
          model: {
            instance: { provider, id: '7454466891239578912', name: 'gce-1', region: 'us-central1', zone: 'us-central1-a', size: 'n2-standard-4', image: 'debian-12', details: { hostname: 'gce-1.us-central1-a.c.example.internal', cpuPlatform: 'Intel Ice Lake' } },
            nics: [
              nic(macs[0], 0, ['10.128.0.2'], 20, '10.128.0.0', '10.128.0.1', ['34.70.1.2'], {
                hostAddresses: true,
                mtu: 1460,
                details: { network: 'projects/123/networks/default', dnsServers: '169.254.169.254', accessConfigs: '34.70.1.2 (ONE_TO_ONE_NAT)' },
              }),
              nic(macs[1], 1, ['10.130.0.5'], 24, '10.130.0.0', '10.130.0.1', [], {
                hostAddresses: true,
                mtu: 1460,
                routedRanges: ['10.130.8.0/24'],
                details: { network: 'projects/123/networks/backend', dnsServers: '169.254.169.254' },
              }),
            ],
          },
          document: gcpDocument,
          sshKeys: ['alice:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIgcp alice'],
        },
      };
    }
  }
}

export function newStatus(provider: ProviderName): ReconcileStatus {
  return initialStatus(provider, new Date('2025-11-28T12:00:00.000Z'));
}

/** A mutable view, as the agent's would be: tests move it through the agent's life. */
export class FakeView implements AgentView {
  readonly version = '0.1.0-test';
  current?: ProviderSnapshot;
  currentPlan?: Plan;
  state: ReconcileStatus;

  constructor(readonly fixture: Fixture) {
    this.state = newStatus(fixture.snapshot.model.instance.provider);
  }

  status(): ReconcileStatus {
    return this.state;
  }
  snapshot(): ProviderSnapshot | undefined {
    return this.current;
  }
  plan(): Plan | undefined {
    return this.currentPlan;
  }

  /** The first reconcile has applied everything: the kernel matches the plan. */
  converge(): this {
    const config = { routeTableBase: 20_000, supplementary: [] };
    const { snapshot, kernel } = this.fixture;
    const first = plan(snapshot.model, config, kernel);
    const after = applied(kernel, first.operations);
    this.current = snapshot;
    this.currentPlan = plan(snapshot.model, config, after);
    const counts: Record<string, number> = {};
    for (const op of first.operations) counts[op.kind] = (counts[op.kind] ?? 0) + 1;
    this.state = {
      ...this.state,
      reconciles: 1,
      lastRefresh: '2025-11-28T12:00:01.000Z',
      lastSuccess: '2025-11-28T12:00:02.000Z',
      lastMetadataSuccess: '2025-11-28T12:00:01.500Z',
      helperReachable: true,
      operations: { applied: counts, failed: {} },
      converged: true,
    };
    return this;
  }

  /** The helper refused the second link's operations: that link is in error, ops pending. */
  failSecondLink(reason: string): this {
    const config = { routeTableBase: 20_000, supplementary: [] };
    const { snapshot, kernel, links } = this.fixture;
    this.current = snapshot;
    this.currentPlan = plan(snapshot.model, config, kernel);
    this.state = {
      ...this.state,
      reconciles: 1,
      lastRefresh: '2025-11-28T12:00:01.000Z',
      lastMetadataSuccess: '2025-11-28T12:00:01.500Z',
      lastError: reason,
      helperReachable: true,
      pendingOperations: this.currentPlan.operations.length,
      pending: this.currentPlan.operations,
      linkErrors: { [links[1]]: reason },
      operations: { applied: {}, failed: { 'address.add': 2 } },
      converged: false,
    };
    return this;
  }
}
