/**
 * @paxkv/kvstore: placeholder entry point, replaced by the package's implementation.
 * @packageDocumentation
 */
export const PACKAGE_NAME = '@paxkv/kvstore';
