/**
 * The per-run container settings that need no engine: which host the containers' ports are reached on, and
 * that a user's own choices (TESTCONTAINERS_HOST_OVERRIDE, TESTCONTAINERS_RYUK_DISABLED) are kept. The decisions
 * that need an engine are tested in engine.slow.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { hostPin, reaperSetting } from '../../src/containers/runtime.js';
import { NO_ENGINE } from './engine.js';

describe('container settings for a run', () => {
  test('an engine on a unix socket (or the default one): ports on 127.0.0.1, whatever /.dockerenv says', () => {
    expect(hostPin({})).toEqual({ TESTCONTAINERS_HOST_OVERRIDE: '127.0.0.1' });
    expect(hostPin({ DOCKER_HOST: 'unix:///tmp/hsm-docker/docker.sock' })).toEqual({ TESTCONTAINERS_HOST_OVERRIDE: '127.0.0.1' });
  });

  test('a remote engine keeps its own host, and a host the user set is never replaced', () => {
    expect(hostPin({ DOCKER_HOST: 'tcp://10.1.2.3:2375' })).toEqual({});
    expect(hostPin({ TESTCONTAINERS_HOST_OVERRIDE: '172.17.0.1' })).toEqual({});
  });

  test('a reaper the user turned off stays off, and the note says who removes the containers', async () => {
    const r = await reaperSetting({ ...process.env, ...NO_ENGINE, TESTCONTAINERS_RYUK_DISABLED: 'true' });
    expect(r.env).toEqual({});
    expect(r.note).toMatch(/reaper off \(TESTCONTAINERS_RYUK_DISABLED\); the harness removes its containers/);
  });

  test('a reaper image that cannot be had turns the reaper off, with the reason', async () => {
    const r = await reaperSetting({ ...process.env, ...NO_ENGINE, RYUK_CONTAINER_IMAGE: 'hsm-harness-test/no-such-reaper:0' });
    expect(r.env).toEqual({ TESTCONTAINERS_RYUK_DISABLED: 'true' });
    expect(r.note).toMatch(
      /^reaper off, the harness removes its containers \(hsm-harness-test\/no-such-reaper:0 is not in the engine and cannot be pulled: \S/,
    );
  });
});
