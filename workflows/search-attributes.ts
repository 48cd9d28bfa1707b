import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';

/** Operator-facing search attributes: ids and process position only, never health information. */
export const CaseStatusKey = defineSearchAttributeKey('CaseStatus', SearchAttributeType.KEYWORD);
export const CaseStepKey = defineSearchAttributeKey('CaseStep', SearchAttributeType.KEYWORD);
export const CounselorIdKey = defineSearchAttributeKey('CounselorId', SearchAttributeType.KEYWORD);
export const TransferIdKey = defineSearchAttributeKey('TransferId', SearchAttributeType.KEYWORD);
export const CaseDueAtKey = defineSearchAttributeKey('CaseDueAt', SearchAttributeType.DATETIME);

export const SEARCH_ATTRIBUTES = [CaseStatusKey, CaseStepKey, CounselorIdKey, TransferIdKey, CaseDueAtKey];
