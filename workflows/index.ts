export * from './case';
export * from './caseload-transfer';
export * from './outbox-sender';
export * from './reconcile';
