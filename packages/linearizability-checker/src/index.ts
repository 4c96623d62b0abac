/**
 * @paxkv/linearizability-checker: placeholder entry point, replaced by the package's implementation.
 * @packageDocumentation
 */
export const PACKAGE_NAME = '@paxkv/linearizability-checker';
