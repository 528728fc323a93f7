/**
 * `hsm-harness images build`: build the container drivers' images now, visibly, instead of inside the first
 * run. Without a registry (an air-gapped lab) the Debian base is built from the machine's Debian mirror with
 * debootstrap and imported into the engine; the SoftHSM image is built on it. The bridge image needs NLnet
 * Labs' package repository and is built only when it answers. The NetHSM image can only be pulled.
 */
import type { Command } from './types.js';
import { parse } from './args.js';
import { UsageError, describeError } from '../errors.js';
import { containerRuntime } from '../containers/runtime.js';
import { buildBaseImage, buildImage, imageState, LOCAL_BASE_IMAGE, pinnedImage } from '../containers/images.js';
import { softhsmImage } from '../containers/softhsm-image.js';
import { importFromTree } from '../registry.js';

// The SoftHSM image is shared by two drivers and lives in src/; the bridge image is its driver's own (build
// arguments and repository), loaded by path so that src/ does not import drivers/.
interface BridgeContainer {
  NLNETLABS_APT_KEY_URL: string;
  bridgeBuildArgs(env: NodeJS.ProcessEnv, softhsmImage: string): Record<string, string>;
  repositoryUnreachable(keyUrl: string): Promise<string | undefined>;
}

export const imagesCommand: Command = {
  name: 'images',
  summary: "build the container drivers' images now (from the Debian mirror when no registry answers)",
  usage: 'hsm-harness images build [--from-mirror]',
  async run(argv) {
    const { values, positionals } = parse('images', argv, { 'from-mirror': { type: 'boolean', default: false } }, true);
    if (positionals.length !== 1 || positionals[0] !== 'build') throw new UsageError(`images: expected "build"; usage: ${this.usage}`);
    const say = (line: string) => process.stderr.write(`images: ${line}\n`);
    const { bridgeBuildArgs, NLNETLABS_APT_KEY_URL, repositoryUnreachable } = await importFromTree<BridgeContainer>('drivers/bridge-container');
    const rt = await containerRuntime(process.env);
    if (!rt.ok) {
      say(rt.reason);
      return 1;
    }
    const env = { ...process.env, ...rt.env };
    say(rt.reason);
    let softhsm: string;
    try {
      // --from-mirror: the base from the Debian mirror even when a registry would answer (e.g. to save it for a lab).
      if (values['from-mirror'] && (await imageState(LOCAL_BASE_IMAGE, env, false)).state !== 'local') await buildBaseImage(env, say);
      softhsm = await softhsmImage(env, say);
      say(`softhsm-container: ${softhsm} is ready`);
    } catch (err) {
      say(`softhsm-container: ${describeError(err)}`);
      return 1;
    }
    const unreachable = await repositoryUnreachable(env.NLNETLABS_APT_KEY_URL || NLNETLABS_APT_KEY_URL);
    if (unreachable) {
      say(`bridge-container: not built: NLnet Labs' package repository is unreachable: ${unreachable}`);
    } else {
      try {
        say(`bridge-container: ${await buildImage('bridge', ['Dockerfile', 'config.toml'], bridgeBuildArgs(env, softhsm), env, say)} is ready`);
      } catch (err) {
        say(`bridge-container: ${describeError(err)}`);
      }
    }
    const nethsm = await imageState(pinnedImage('nethsm'), env);
    say(
      `nethsm: ${nethsm.state === 'unavailable' ? `${nethsm.detail} (docker pull it where a registry answers, then docker save | docker load here)` : `${nethsm.detail}; the first run pulls it`}`,
    );
    return 0;
  },
};
