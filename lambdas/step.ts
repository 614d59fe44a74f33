/**
 * The step handler as the local cloud (and any deployment that names its workflows module in
 * `VALENCE_WORKFLOWS`) registers it. Bundles built by infra use a generated entry that passes
 * the workflows module to {@link createStepHandler} instead.
 */
import { createStepHandler } from './step-handler.ts';

/** The handler: workflows from `VALENCE_WORKFLOWS`. */
export const handler = createStepHandler();
