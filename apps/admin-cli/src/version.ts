/** Kept in step with package.json by hand: the CLI reads no files at startup. */
export const VERSION = '0.1.0';
