export * from './case';
export * from './caseload-transfer';
