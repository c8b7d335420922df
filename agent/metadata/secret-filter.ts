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
  let answer = knownKeys.get(key);
  if (answer === undefined) {
    answer = SECRET_KEY.test(key.replace(/[-_\s.]/g, ''));
    if (knownKeys.size >= MAX_KNOWN_KEYS) knownKeys.clear();
    knownKeys.set(key, answer);
  }
  return answer;
}

/**
 * looksSecret's answers: a document repeats its keys (privateIpAddress once per IP), and
 * normalising and matching each one is most of the filter's own work. Bounded: a document with
 * more distinct keys than this starts the memory afresh.
 */
const knownKeys = new Map<string, boolean>();
const MAX_KNOWN_KEYS = 1_000;

/**
 * `value` without secret-looking keys, private keys in PEM form, and the value of name/value
 * pairs whose name looks secret (Azure tagsList: {"name":"dbPassword","value":…}). What holds
 * nothing to remove is returned as it is, not copied: the filter runs on the way to the first
 * plan, and copying every address entry would be most of its time. Nothing changes a document
 * after it is parsed, so the sharing is safe.
 */
export function withoutSecrets(value: unknown): unknown {
  if (typeof value === 'string') return PEM_PRIVATE_KEY.test(value) ? undefined : value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const filtered = withoutSecrets(value[i]);
      if (copy) {
        if (filtered !== undefined) copy.push(filtered);
      } else if (filtered !== value[i]) {
        copy = value.slice(0, i);
        if (filtered !== undefined) copy.push(filtered);
      }
    }
    return copy ?? value;
  }
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    const name = object.name;
    const namedSecret = typeof name === 'string' && looksSecret(name);
    const keys = Object.keys(object);
    let copy: Record<string, unknown> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const child = object[key];
      const filtered = looksSecret(key) || (namedSecret && key === 'value') ? undefined : withoutSecrets(child);
      if (!copy && filtered !== child) {
        copy = {};
        for (let j = 0; j < i; j++) copy[keys[j]!] = object[keys[j]!];
      }
      if (copy && filtered !== undefined) copy[key] = filtered;
    }
    return copy ?? value;
  }
  return value;
}
