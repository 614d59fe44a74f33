// Debian's headless Chromium, as the dashboard's browser tests launch it.

/** The flags Debian's chromium needs on this kind of machine (shared/DEPENDENCIES.md). */
export const CHROMIUM = {
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
};
