// A second line of defence for the provider documents the API serves. Providers already leave
// secrets out of `document`; this drops anything that still looks secret, because the API is
// readable by every local user and one forgotten key (EC2's iam/security-credentials, an
// instance identity signature, a token) would hand them the VM's cloud identity.

// Compared with the key's letters only (case, '-', '_' and spaces ignored): SecretAccessKey,
// secret_access_key and security-credentials all match.
const SECRET_KEY = new RegExp(
  [
    'token',
    'secret',
    'password',
    'passwd',
    'credential',
    'signature',
    'accesskey',
    'privatekey',
    // EC2 dynamic/instance-identity: the signed document's signatures
    'pkcs7',
    'rsa2048',
    // user data (EC2 user-data, Azure userData/customData, GCP startup scripts, GKE kube-env)
    // routinely carries passwords and join tokens
    'userdata',
    'customdata',
    'startupscript',
    'kubeenv',
  ].join('|'),
  'i',
);

const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

export function looksSecret(key: string): boolean {
  return SECRET_KEY.test(key.replace(/[-_\s.]/g, ''));
}

/**
 * A copy of `value` without secret-looking keys, private keys in PEM form, and the value of
 * name/value pairs whose name looks secret (Azure tagsList: {"name":"dbPassword","value":…}).
 */
export function withoutSecrets(value: unknown): unknown {
  if (typeof value === 'string') return PEM_PRIVATE_KEY.test(value) ? undefined : value;
  if (Array.isArray(value)) {
    return value.map(withoutSecrets).filter((v) => v !== undefined);
  }
  if (value !== null && typeof value === 'object') {
    const name = (value as Record<string, unknown>).name;
    const namedSecret = typeof name === 'string' && looksSecret(name);
    const result: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      if (looksSecret(key)) continue;
      if (namedSecret && key === 'value') continue;
      const filtered = withoutSecrets(child);
      if (filtered !== undefined) result[key] = filtered;
    }
    return result;
  }
  return value;
}
