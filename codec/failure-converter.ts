import { DefaultFailureConverter } from '@temporalio/common';

/**
 * A failure's message and stack go into a payload, which the codec seals, instead of into history in clear: a
 * refusal can name a rule and the fact behind it ("a domestic-violence flag on record"). Loaded by path by the
 * client and the worker, and bundled into the workflow sandbox (it imports nothing else).
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
