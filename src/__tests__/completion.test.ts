import { completionItems, FLUX_VARIABLES, macrosFor, NameLists, SQL_MACROS } from '../completion';

const lists: NameLists = {
  metrics: ['temperature', 'humidity'],
  devices: ['pico', "o'brien"],
  sensors: ['dht22'],
};

const kinds = (items: ReturnType<typeof completionItems>) => Array.from(new Set(items.map((i) => i.kind)));

describe('macro lists', () => {
  it('has one list per language, every SQL macro a $__ snippet', () => {
    expect(macrosFor('sql')).toBe(SQL_MACROS);
    expect(macrosFor('flux')).toBe(FLUX_VARIABLES);
    for (const m of SQL_MACROS) {
      expect(m.name).toMatch(/^\$__\w+$/);
      expect(m.signature.startsWith(m.name)).toBe(true);
      expect(m.insertText.startsWith('\\' + m.name)).toBe(true); // a literal $ in snippet syntax
    }
    for (const v of FLUX_VARIABLES) {
      expect(v.name).toMatch(/^v\.\w+$/);
    }
    expect(new Set(SQL_MACROS.map((m) => m.name)).size).toBe(SQL_MACROS.length);
  });
});

describe('completionItems: SQL', () => {
  it('offers macros (snippets, first) then every name as a quoted literal, replacing the typed $__', () => {
    const items = completionItems('sql', 'SELECT * FROM readings WHERE $__', lists);
    const timeFilter = items.find((i) => i.label === '$__timeFilter')!;
    expect(timeFilter).toMatchObject({
      kind: 'macro',
      snippet: true,
      insertText: '\\$__timeFilter(${1:time})',
      replace: 3,
    });
    expect(timeFilter.documentation).toBeTruthy();
    expect(items.filter((i) => i.kind === 'macro')).toHaveLength(SQL_MACROS.length);
    expect(kinds(items)).toEqual(['macro', 'metric', 'device', 'sensor']);
    const sorted = [...items].sort((a, b) => a.sortText.localeCompare(b.sortText));
    expect(sorted[0].kind).toBe('macro');
    expect(items.find((i) => i.label === 'humidity')).toMatchObject({ insertText: "'humidity'", snippet: false });
    expect(items.find((i) => i.label === "o'brien")!.insertText).toBe("'o''brien'");
  });

  it.each([
    ["WHERE metric = '", 'metric', 0],
    ["WHERE metric='hu", 'metric', 2],
    ["WHERE device <> 'p", 'device', 1],
    ["WHERE r.sensor != '", 'sensor', 0],
    ["WHERE device IN ('pico', 'o''b", 'device', 4],
    ["WHERE Metric = 'x' AND device = '", 'device', 0],
  ])('inside a string after %j offers the %s names only', (text, kind, replace) => {
    const items = completionItems('sql', text, lists);
    expect(kinds(items)).toEqual([kind]);
    expect(items.every((i) => i.replace === replace && !i.snippet)).toBe(true);
  });

  it('escapes quotes inside a string and offers all names (no macros) in other strings', () => {
    expect(completionItems('sql', "device = '", lists).map((i) => i.insertText)).toEqual(['pico', "o''brien"]);
    const items = completionItems('sql', "SELECT 'x' AS a, '", lists);
    expect(kinds(items)).toEqual(['metric', 'device', 'sensor']);
  });

  it('is not fooled by closed strings, escaped quotes or comments', () => {
    expect(kinds(completionItems('sql', "WHERE metric = 'it''s' AND ", lists))[0]).toBe('macro');
    expect(kinds(completionItems('sql', "-- don't\nSELECT ", lists))[0]).toBe('macro');
  });
});

describe('completionItems: Flux', () => {
  it('offers the v.* variables after v.', () => {
    const items = completionItems('flux', '  |> range(start: v.', lists);
    expect(items.find((i) => i.label === 'v.timeRangeStart')).toMatchObject({ kind: 'macro', replace: 2 });
    expect(items.filter((i) => i.kind === 'macro')).toHaveLength(FLUX_VARIABLES.length);
    expect(items.find((i) => i.label === 'pico')!.insertText).toBe('"pico"');
  });

  it.each([
    ['|> filter(fn: (r) => r._measurement == "', 'metric'],
    ['|> filter(fn: (r) => r.device == "pi', 'device'],
    ['|> filter(fn: (r) => r["sensor"] != "', 'sensor'],
  ])('inside a string after %j offers the %s names only', (text, kind) => {
    expect(kinds(completionItems('flux', text, lists))).toEqual([kind]);
  });

  it('escapes Flux string syntax', () => {
    const items = completionItems('flux', 'r.device == "', { metrics: [], devices: ['a"b\\c${d}'], sensors: [] });
    expect(items[0].insertText).toBe('a\\"b\\\\c\\${d}');
  });
});
