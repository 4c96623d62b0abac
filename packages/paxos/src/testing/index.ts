/** Test helpers of @paxkv/paxos. */
export const TESTING = true;
