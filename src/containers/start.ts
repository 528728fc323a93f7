/**
 * Starting a container so that it is never lost: it gets a name before it is created, the name goes into the
 * ledger (and so to the parent's journal) first, and a start that fails removes it. The parent removes every
 * named container of a driver process that crashed, timed out or was interrupted.
 */
import { randomBytes } from 'node:crypto';
import type { GenericContainer, StartedTestContainer, Wait } from 'testcontainers';
import { hold, release } from '../ledger.js';
import { HARNESS_LABEL } from './docker.js';
import { removeContainers } from './cleanup.js';

export interface HeldContainer {
  name: string;
  container: StartedTestContainer;
  stop(): Promise<void>;
}

export async function startNamedContainer(
  driverId: string,
  image: string,
  configure: (c: GenericContainer, wait: typeof Wait) => GenericContainer,
): Promise<HeldContainer> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const name = `hsm-harness-${driverId}-${randomBytes(4).toString('hex')}`;
  hold({ t: 'container', id: name });
  const drop = () => release({ t: 'container', id: name });
  let container: StartedTestContainer;
  try {
    container = await configure(new GenericContainer(image).withName(name).withLabels({ [HARNESS_LABEL]: driverId }), Wait).start();
  } catch (err) {
    // A container that was created but failed its wait strategy stays behind otherwise.
    await removeContainers([name]);
    drop();
    throw err;
  }
  return {
    name,
    container,
    async stop() {
      await container.stop({ timeout: 5_000 }).catch(() => undefined);
      // Without the reaper nothing else would notice a stop that failed half-way.
      await removeContainers([name]);
      drop();
    },
  };
}
