/**
 * The SoftHSM image (containers/softhsm) that the softhsm-container driver runs and the bridge-container
 * driver builds its image on: here, so that neither driver imports the other.
 */
import { type BasePlan, basePlan, buildBaseImage, buildImage, imageState, localImageName } from './images.js';

const SOFTHSM_CONTAINER_FILES = ['Dockerfile', 'entrypoint.sh'];

/** The image name for a base: content-addressed, so a changed Dockerfile or base is a new image. */
export function softhsmImageName(base: string): string {
  return localImageName('softhsm', SOFTHSM_CONTAINER_FILES, JSON.stringify({ BASE_IMAGE: base }));
}

/** Can the SoftHSM image be had, and how? Cached through imageState, so a run asks the engine once. */
export async function softhsmImagePlan(env: NodeJS.ProcessEnv): Promise<BasePlan> {
  const base = await basePlan(env);
  if (!base.ok) return base;
  const image = softhsmImageName(base.image);
  if (!base.build && (await imageState(image, env, false)).state === 'local')
    return { ok: true, image: base.image, build: false, how: `${image} (in the engine)` };
  return base;
}

/** Build (or find) the SoftHSM image, building the base first when the plan says so. */
export async function softhsmImage(env: NodeJS.ProcessEnv, say: (line: string) => void = () => undefined): Promise<string> {
  const plan = await softhsmImagePlan(env);
  if (!plan.ok) throw new Error(plan.reason);
  if (plan.build) await buildBaseImage(env, say);
  return buildImage('softhsm', SOFTHSM_CONTAINER_FILES, { BASE_IMAGE: plan.image }, env, say);
}
