import { describe, expect, it } from 'vitest';
import { portTakenReason } from './launcher.js';

describe('portTakenReason', () => {
  it("finds the server's EADDRINUSE reason in its log, or nothing", () => {
    const json =
      '{"level":"error","msg":"paxkv-server failed to start: listen EADDRINUSE: address already in use 127.0.0.1:39067"}';
    expect(portTakenReason(`{"level":"info","msg":"starting"}\n${json}\n`)).toBe(
      'paxkv-server failed to start: listen EADDRINUSE: address already in use 127.0.0.1:39067',
    );
    expect(portTakenReason('Error: listen EADDRINUSE: address already in use :::7000')).toBe(
      'Error: listen EADDRINUSE: address already in use :::7000',
    );
    expect(portTakenReason('{"level":"error","msg":"cannot open partition 3"}')).toBeUndefined();
  });
});
