/**
 * The two marks every object the harness creates carries, so that a leftover can be proven ours: a label
 * starting with LABEL_PREFIX and a CKA_ID that starts with the run's random prefix (RUN_PREFIX_BYTES) and a
 * 4-byte counter. Kept apart from token.ts so that the journal can check them without loading the addon.
 */
export const LABEL_PREFIX = 'hsm-harness-';
/** Bytes of the run's random CKA_ID prefix. */
export const RUN_PREFIX_BYTES = 8;
/** Bytes of run prefix + counter at the start of every CKA_ID the harness allocates. */
export const ID_HEAD_BYTES = 12;
