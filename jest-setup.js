// Jest setup provided by Grafana scaffolding
import './.config/jest-setup';

// jsdom lacks these; @grafana/ui's Select menu (ScrollContainer) and some layouts use them.
class NoopObserver {
  observe() {}
  unobserve() {}
  disconnect() {}
  takeRecords() {
    return [];
  }
}
Object.assign(global, { IntersectionObserver: NoopObserver, ResizeObserver: NoopObserver });
