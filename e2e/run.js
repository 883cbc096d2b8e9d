#!/usr/bin/env node
/*
 * `npm run e2e`: the real-browser check of the editors.
 * 1. bundles e2e/harness.tsx with webpack (the project's own bundler),
 * 2. serves it on 127.0.0.1 together with @grafana/ui's icons,
 * 3. opens it in headless Chromium (playwright-core, system /usr/bin/chromium),
 * 4. asserts labels are visible, a picker is fed by the (stand-in) resources, and the code editors (Monaco)
 *    complete macros and resource names,
 * 5. writes e2e/out/editors.png and fails on any console error, page error or failed request.
 */
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const webpack = require('webpack');
const { chromium } = require('playwright-core');

const OUT = path.join(__dirname, 'out');
const ICONS = path.join(__dirname, '..', 'node_modules', '@grafana', 'ui', 'dist', 'public', 'img', 'icons');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

function bundle() {
  const config = require('./webpack.harness.config.js');
  return new Promise((resolve, reject) => {
    webpack(config, (err, stats) => {
      if (err) {
        return reject(err);
      }
      if (stats.hasErrors()) {
        return reject(new Error(stats.toString('errors-only')));
      }
      resolve();
    });
  });
}

const SPINNER =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M12 2a10 10 0 1 0 10 10h-2a8 8 0 1 1-8-8z"/></svg>';

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.svg': 'image/svg+xml', '.png': 'image/png' };

function serve() {
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file;
    if (url === '/' || url === '/index.html') {
      file = path.join(OUT, 'index.html');
    } else if (url.startsWith('/public/img/icons/')) {
      file = path.join(ICONS, url.slice('/public/img/icons/'.length));
    } else {
      file = path.join(OUT, url);
    }
    if (url === '/public/img/icons/unicons/spinner.svg' && !fs.existsSync(file)) {
      // Grafana serves its spinner icon from its own public/img; @grafana/ui's package has no copy. The code
      // editor's "Loading editor" placeholder shows it while Monaco's chunk loads.
      res.writeHead(200, { 'Content-Type': 'image/svg+xml' });
      return res.end(SPINNER);
    }
    const root = url.startsWith('/public/img/icons/') ? ICONS : OUT;
    if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404);
      return res.end('not found');
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function main() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  fs.mkdirSync(OUT, { recursive: true });
  const t0 = Date.now();
  await bundle();
  fs.writeFileSync(
    path.join(OUT, 'index.html'),
    '<!doctype html><html><head><meta charset="utf-8"><title>Fieldline editors</title><link rel="icon" href="data:,"></head>' +
      '<body><div id="root"></div><script src="/harness.js"></script></body></html>'
  );
  console.log(`e2e: harness bundled in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const server = await serve();
  const base = `http://127.0.0.1:${server.address().port}`;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldline-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1500, height: 1200 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });

  const problems = [];
  const results = [];
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on('console', (msg) => {
      if (msg.type() === 'error') {
        problems.push(`console.error: ${msg.text()} (${msg.location().url || 'no url'})`);
      }
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
    page.on('response', (rsp) => {
      if (rsp.status() >= 400) {
        problems.push(`HTTP ${rsp.status()}: ${rsp.url()}`);
      }
    });

    await page.goto(`${base}/index.html`, { waitUntil: 'load' });

    const check = async (name, fn) => {
      try {
        await fn();
        results.push([name, true]);
        console.log(`  ✓ ${name}`);
      } catch (e) {
        results.push([name, false]);
        console.log(`  ✗ ${name}: ${e.message.split('\n')[0]}`);
      }
    };
    const visible = (locator) => locator.first().waitFor({ state: 'visible', timeout: 15000 });

    await check('config editor sections are visible', async () => {
      for (const text of ['PostgreSQL / TimescaleDB', 'InfluxDB', 'Broker URL', 'Client ID prefix', 'TLS/SSL mode']) {
        await visible(page.getByText(text, { exact: true }));
      }
      await visible(page.getByText('Save & test'));
    });
    await check('secure field shows configured state with Reset', async () => {
      await visible(page.getByRole('button', { name: 'Reset' }));
    });
    await check('inline validation flags the http:// broker URL', async () => {
      await visible(
        page.getByText(/Scheme must be one of tcp, mqtt, ssl, tls, mqtts, tcps, ws, wss \(got http:\/\/\)/)
      );
    });
    await check('query editor builder shows pickers and the SQL preview', async () => {
      const qe = page.getByTestId('qe-builder');
      for (const text of ['Metric', 'Device', 'Sensor', 'Aggregation', 'Interval', 'Live']) {
        await visible(qe.getByText(text, { exact: true }));
      }
      // what the (stand-in) backend's /preview answers, with its bound values
      await visible(qe.getByText(/FROM readings_1m/));
      await visible(qe.getByText(/\$1 = 'temperature'/));
    });
    await check('metric picker is fed by the resource', async () => {
      const qe = page.getByTestId('qe-builder');
      await qe.locator('#fl-sensor').click();
      await visible(page.getByText('dht22', { exact: true }));
      await page.keyboard.press('Escape');
    });
    await check('states mode: the pickers and "Only changes to", no aggregation', async () => {
      const qe = page.getByTestId('qe-states');
      await visible(qe.getByRole('radio', { name: 'States' }));
      for (const text of ['Metric', 'Device', 'Sensor', 'Only changes to', 'Live']) {
        await visible(qe.getByText(text, { exact: true }));
      }
      if ((await qe.getByText('Aggregation', { exact: true }).count()) !== 0) {
        throw new Error('the states editor shows Aggregation');
      }
      await qe.locator('#fl-state').fill('offline');
      await qe.locator('#fl-state').blur();
      await visible(qe.getByText(/\$1 = 'status'/));
    });
    await check('code SQL shows the macro reference and live note', async () => {
      const qe = page.getByTestId('qe-code');
      await qe.getByText('Macros', { exact: true }).click();
      await visible(qe.getByText('$__timeGroupAlias(time, $__interval)'));
      await visible(qe.getByText(/Code SQL queries show the history for the range/));
    });
    // Monaco: the suggest widget of the editor that has focus (fixedOverflowWidgets puts it outside the box)
    const suggest = (text) =>
      visible(page.locator('.suggest-widget.visible .monaco-list-row').filter({ hasText: text }));
    const typeAtEnd = async (editor, text) => {
      await editor.locator('.view-lines').click();
      await page.keyboard.press('Control+End');
      await page.keyboard.type(text, { delay: 30 });
    };
    await check('code SQL is a Monaco editor with line numbers', async () => {
      const editor = page.getByTestId('qe-code').locator('#fl-rawsql .monaco-editor');
      await visible(editor);
      await visible(editor.locator('.line-numbers').filter({ hasText: '5' }));
      await visible(page.getByRole('textbox', { name: 'SQL query' }));
    });
    await check('typing $__ in code SQL suggests $__timeFilter', async () => {
      const editor = page.getByTestId('qe-code').locator('#fl-rawsql .monaco-editor');
      await typeAtEnd(editor, '\n$__');
      await suggest('$__timeFilter');
      await page.keyboard.press('Escape');
    });
    await check("typing in a metric string suggests the resource's metrics", async () => {
      const editor = page.getByTestId('qe-code').locator('#fl-rawsql .monaco-editor');
      await typeAtEnd(editor, "timeFilter(time) AND metric = 'hu");
      await suggest('humidity');
      await page.keyboard.press('Enter');
      await visible(editor.locator('.view-line').filter({ hasText: "metric = 'humidity'" }));
    });
    await check('code Flux is a Monaco editor completing v.* and measurement names', async () => {
      const editor = page.getByTestId('qe-flux').locator('#fl-flux .monaco-editor');
      await visible(editor);
      await visible(page.getByRole('textbox', { name: 'Flux query' }));
      await typeAtEnd(editor, '\n  |> aggregateWindow(every: v.');
      await suggest('v.windowPeriod');
      await page.keyboard.press('Escape');
      await typeAtEnd(editor, 'windowPeriod, fn: mean)\n  |> filter(fn: (r) => r._measurement == "');
      await suggest('rssi');
      await page.keyboard.press('Escape');
    });
    await check('MQTT editor shows topic, payload and template', async () => {
      const qe = page.getByTestId('qe-mqtt');
      for (const text of ['Topic', 'Payload', 'Template']) {
        await visible(qe.getByText(text, { exact: true }));
      }
    });
    await check('icons load (no broken images)', async () => {
      await page.waitForLoadState('networkidle');
    });

    await page.screenshot({ path: path.join(OUT, 'editors.png'), fullPage: true });
    console.log(`e2e: screenshot written to ${path.relative(process.cwd(), path.join(OUT, 'editors.png'))}`);
  } finally {
    await context.close();
    server.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }

  const passed = results.filter((r) => r[1]).length;
  let failed = results.length - passed;
  if (problems.length > 0) {
    console.log(`e2e: ${problems.length} console/page/network error(s):`);
    for (const p of problems) {
      console.log(`  - ${p}`);
    }
    failed += 1;
    results.push(['no console errors', false]);
  } else {
    results.push(['no console errors', true]);
    console.log('  ✓ no console errors');
  }
  console.log(`${results.filter((r) => r[1]).length} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
