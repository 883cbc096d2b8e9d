/*
 * Follows the layout scaffolded by @grafana/create-plugin. Extend in ../.prettierrc.js.
 */
module.exports = {
  endOfLine: 'auto',
  printWidth: 120,
  trailingComma: 'es5',
  semi: true,
  jsxSingleQuote: false,
  singleQuote: true,
  useTabs: false,
  tabWidth: 2,
};
