import { aggregationOf, liveStreams, splitList, topicFromSelector } from '../preview';

// The preview of what a query runs and the "switch to code" seeds come from the backend's /preview resource
// (Go tests: TestSwitchToCodeSQL, TestSwitchToCodeFlux); these are the editor's own helpers.
describe('helpers', () => {
  it('topicFromSelector fills the template', () => {
    expect(topicFromSelector({ device: 'pico', metric: 'temperature' })).toBe('pico/temperature/+');
    expect(topicFromSelector({ metric: 'rssi', template: 'iiot/{device}/{metric}' })).toBe('iiot/+/rssi');
  });
  it('splitList', () => {
    expect(splitList(' {a, b} ')).toEqual(['a', 'b']);
    expect(splitList(undefined)).toEqual([]);
  });
});

describe('raw (none) aggregation and live', () => {
  it('only builder SQL time series and MQTT stream', () => {
    const q = {
      source: 'sql' as const,
      mode: 'builder' as const,
      metric: 'temperature',
      aggregation: 'none' as const,
      live: true,
    };
    expect(liveStreams(q)).toBe(true);
    expect(liveStreams({ ...q, aggregation: 'avg' })).toBe(true);
    expect(liveStreams({ ...q, format: 'table' })).toBe(false);
    expect(liveStreams({ ...q, aggregation: '' as never })).toBe(true); // provisioning writes ''
    expect(liveStreams({ ...q, mode: 'code' })).toBe(false);
    expect(liveStreams({ ...q, source: 'flux' })).toBe(false);
    expect(liveStreams({ source: 'mqtt', topic: 'pico/#' })).toBe(true);
    expect(aggregationOf({})).toBe('none'); // the backend's default (src/contract.gen.ts)
  });
});
