/**
 * A throwaway PKI for loopback KMIP servers: a CA, a server certificate for 127.0.0.1/localhost and a client
 * certificate (PyKMIP requires one signed by its ca_path, with EKU clientAuth). ECDSA P-256 keys, because
 * PyKMIP's default TLS 1.2 cipher list only offers AES-GCM with ECDSA. Made with the openssl CLI.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runToolOk } from '../proc.js';

export interface TestPki {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

const EXTENSIONS = `[server]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:::1, DNS:localhost
[client]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = clientAuth
`;

export async function makeTestPki(dir: string): Promise<TestPki> {
  const p = (f: string) => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await writeFile(p('extensions.cnf'), EXTENSIONS);
  await runToolOk('openssl', ['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=hsm-harness test CA']);
  for (const who of ['server', 'client'] as const) {
    await runToolOk('openssl', ['req', ...ec, '-keyout', p(`${who}.key`), '-out', p(`${who}.csr`), '-subj', `/CN=hsm-harness-${who}`]);
    await runToolOk('openssl', [
      'x509',
      '-req',
      '-in',
      p(`${who}.csr`),
      '-CA',
      p('ca.pem'),
      '-CAkey',
      p('ca.key'),
      '-set_serial',
      who === 'server' ? '2' : '3',
      '-days',
      '2',
      '-out',
      p(`${who}.pem`),
      '-extfile',
      p('extensions.cnf'),
      '-extensions',
      who,
    ]);
  }
  return { ca: p('ca.pem'), serverCert: p('server.pem'), serverKey: p('server.key'), clientCert: p('client.pem'), clientKey: p('client.key') };
}
