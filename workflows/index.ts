export * from './case';
