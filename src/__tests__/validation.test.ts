import { validateHostPort, validateInfluxUrl, validateMqttUrl } from '../validation';

describe('validation', () => {
  it.each(['', 'localhost:5432', 'db.lan', '10.0.0.5:5433', '[::1]:5432'])('host %s is fine', (v) => {
    expect(validateHostPort(v)).toBeUndefined();
  });
  it.each(['http://db:5432', 'db:99999', 'db:', 'a b:1'])('host %s is rejected', (v) => {
    expect(validateHostPort(v)).toBeDefined();
  });
  it.each([
    '',
    'tcp://localhost:1883',
    'ssl://broker.lan:8883',
    'ws://b:9001/mqtt',
    'wss://user@b',
    'mqtt://b',
    'mqtts://b:8883',
    'tls://b',
    'tcps://b',
  ])('mqtt %s is fine', (v) => {
    expect(validateMqttUrl(v)).toBeUndefined();
  });
  it.each(['http://b:1883', 'gopher://b', 'localhost:1883', 'tcp://'])('mqtt %s is rejected', (v) => {
    expect(validateMqttUrl(v)).toBeDefined();
  });
  it.each(['', 'http://localhost:8086', 'https://eu.example.com'])('influx %s is fine', (v) => {
    expect(validateInfluxUrl(v)).toBeUndefined();
  });
  it.each(['localhost:8086', 'tcp://x', 'ftp://x'])('influx %s is rejected', (v) => {
    expect(validateInfluxUrl(v)).toBeDefined();
  });
});
