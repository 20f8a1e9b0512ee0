export * from './cutover.ts';
export * from './dual-write.ts';
export * from './media-migration.ts';
export * from './resolve-for-provider.ts';
export { containsPlaceholder, parsePlaceholder } from './image-references.ts';
