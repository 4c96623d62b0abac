/**
 * Chosen end-to-end suites of real servers run again with TLS and a cluster token on every server
 * (`PAXKV_TEST_SECURITY=tls-token`, see `TestSecurity` in harness.ts): peers dial each other over mutual
 * TLS with the certificate check, prove the token, and every client request of the suites goes over TLS
 * (the harness's `request`/`RawClient` pick up the cluster's CA). Each cluster's `waitReady` also checks
 * that a plain TCP request gets no answer, so a suite cannot pass here while its servers ran in clear.
 *
 * The set (one CI-bounded run): `member-change.test.ts` (member add under a checked linearizable
 * workload, then member remove: every call's history checked, acknowledged writes read back) and
 * `membership.test.ts` (metadata group, check-ins through any server, the cluster outliving its
 * bootstrap server). Any other suite written against the harness alone can run the same way:
 * `PAXKV_TEST_SECURITY=tls-token pnpm exec vitest run apps/server/test/<file>`.
 */
process.env.PAXKV_TEST_SECURITY = 'tls-token';
await import('./member-change.test.js');
await import('./membership.test.js');
