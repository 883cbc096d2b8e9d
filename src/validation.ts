import { SETTINGS_VALUES } from './contract.gen';
/**
 * Inline validation for the config editor. Each function returns an error message, or undefined when the
 * value is acceptable (an empty value is acceptable: that section is simply not configured).
 */

// The schemes internal/mqttconn accepts (src/contract.gen.ts, written by Go).
const MQTT_SCHEMES: readonly string[] = SETTINGS_VALUES['mqtt.url.scheme'];

/** host:port, e.g. localhost:5432, db.lan:5433, [::1]:5432. The port may be left out (5432). */
export function validateHostPort(value?: string): string | undefined {
  const v = (value ?? '').trim();
  if (v === '') {
    return undefined;
  }
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(v);
  if (!m) {
    return 'Use host:port, for example localhost:5432';
  }
  if (m[2] !== undefined) {
    const port = Number(m[2]);
    if (port < 1 || port > 65535) {
      return 'Port must be between 1 and 65535';
    }
  }
  return undefined;
}

function parseUrl(v: string): URL | undefined {
  try {
    return new URL(v);
  } catch {
    return undefined;
  }
}

/** InfluxDB URL: http:// or https:// with a host. */
export function validateInfluxUrl(value?: string): string | undefined {
  const v = (value ?? '').trim();
  if (v === '') {
    return undefined;
  }
  const u = parseUrl(v);
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '') {
    return 'Use an http:// or https:// URL, for example http://localhost:8086';
  }
  return undefined;
}

/** MQTT broker URL: tcp:// (mqtt://), ssl:// (tls://, mqtts://, tcps://), ws:// or wss:// with a host (port optional). */
export function validateMqttUrl(value?: string): string | undefined {
  const v = (value ?? '').trim();
  if (v === '') {
    return undefined;
  }
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]+)(.*)$/i.exec(v);
  if (!m) {
    return 'Use a broker URL such as tcp://localhost:1883';
  }
  const scheme = m[1].toLowerCase();
  if (!MQTT_SCHEMES.includes(scheme)) {
    return `Scheme must be one of ${MQTT_SCHEMES.join(', ')} (got ${scheme}://)`;
  }
  const hostPort = m[2].includes('@') ? m[2].slice(m[2].lastIndexOf('@') + 1) : m[2];
  if (validateHostPort(hostPort) !== undefined) {
    return 'Use a broker URL such as tcp://localhost:1883';
  }
  return undefined;
}

/** A Go duration the backend accepts for the live settings ("5s", "250ms", "1m"); empty = the default. */
export function validateDuration(value?: string): string | undefined {
  if (!value || value.trim() === '') {
    return undefined;
  }
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(value.trim())) {
    return 'A duration such as 5s, 250ms or 1m';
  }
  return undefined;
}
