import { createConnection } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startMiniStack } from '../../localstack/ministack';
import { isAlive } from '../../localstack/processes';

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('MiniStack for the deploy rehearsal', () => {
  it('starts on a port of its own (never LocalStack 4566), answers, and stops with nothing left listening', async () => {
    // Prepare / Act
    const ministack = await startMiniStack(() => undefined, { timeoutMs: 120_000, name: 'ministack-test' });
    try {
      // Assess
      expect(ministack.port).not.toBe(4566);
      const health = await fetch(`${ministack.endpoint}/_ministack/health`);
      expect(health.ok).toBe(true);
      expect(((await health.json()) as { services: Record<string, string> }).services).toMatchObject({
        cloudformation: 'available',
        lambda: 'available',
        sqs: 'available',
        s3: 'available',
      });
    } finally {
      await ministack.stop();
    }
    expect(isAlive(ministack.pid)).toBe(false);
    expect(await listening(ministack.port)).toBe(false);
  }, 300_000);
});
