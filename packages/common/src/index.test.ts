import { describe, expect, it } from 'vitest';
import { PACKAGE_NAME } from './index.js';

describe('package entry', () => {
  it('is resolved from source', () => {
    expect(PACKAGE_NAME).toBe('@paxkv/common');
  });
});
